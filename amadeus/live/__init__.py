"""Stage 7, live play: a phrase played, an answer heard.

`settings` (the live settings, declared once), `phrase` (the phrase encoded as it is played),
`engine` (turn-taking: prefill, answers streamed ahead of playback, barge-in, takes), `record`
(the session as MIDI), `instrument` (one model, an engine per player), `protocol` (the messages
and limits of the WebSocket), `connection` and `server` (play.py's web server), `ports` (MIDI
ports), `playing` (what play.py runs). For the page that runs the model itself (web/js/engine
ports the engine): `onnx_export` (one generation step as an ONNX graph), `manifest` (everything
else the page must know of a session, as JSON), `onnx_steps` (the graph run here, for parity).

Imports every stage before it; the engine has no web code, and only `playing` imports the web
server.
"""
