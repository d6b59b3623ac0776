"""Live play: the turn-taking engine (`engine`), the phrase encoded as it is played (`phrase`),
and the record of a session with its takes (`record`). No web code: play.py and amadeus.server
drive it."""
