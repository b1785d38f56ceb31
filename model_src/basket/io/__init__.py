"""Files written so that a reader never sees half of one (`atomic`), and work done in a
background thread while the caller goes on (`background`). The lowest layer: it imports
nothing else of basket."""
