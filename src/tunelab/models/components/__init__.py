"""Plain nn.Modules (no Lightning), testable on their own."""
