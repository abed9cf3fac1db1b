"""Model families: plain nn.Modules in components/, thin LightningModules here."""
