"""Musical constants with their units, in one place (cf. note-seq's constants.py)."""

# Melody event values (note_seq.melodies_lib): pitches are 0..127 MIDI numbers.
MELODY_NOTE_OFF = -1  # ends the sounding note at this step
MELODY_NO_EVENT = -2  # hold whatever is (or isn't) sounding
MIN_MIDI_PITCH = 0
MAX_MIDI_PITCH = 127
NOTES_PER_OCTAVE = 12

DEFAULT_STEPS_PER_QUARTER = 4  # 16th-note grid
DEFAULT_QPM = 120.0  # lacking a tempo, a score plays at 120 quarter notes per minute
DEFAULT_VELOCITY = 80  # MIDI velocity for scores that carry none (music21, JSB)

# Melody range of Magenta's MelodyRNN configs: [48, 84) i.e. C3..B5.
DEFAULT_MIN_NOTE = 48
DEFAULT_MAX_NOTE = 84

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
# NOTE_KEYS[pc] = the major keys (0 = C major) whose scale contains pitch class pc.
NOTE_KEYS = tuple(
    tuple(key for key in range(NOTES_PER_OCTAVE) if (pc - key) % NOTES_PER_OCTAVE in MAJOR_SCALE)
    for pc in range(NOTES_PER_OCTAVE)
)

# Voice labels of a four-part chorale, top to bottom.
SATB = ("S", "A", "T", "B")
