"""Live transcription: audio in small chunks, text out as soon as it is stable.

``events`` (what a stream emits), ``agreement`` (LocalAgreement: which words are stable),
``vad`` (streaming Silero VAD), ``whisper_stream`` (the policy over a Whisper model),
``sources`` (microphone, file, queue), ``server`` (the WebSocket endpoint) and ``terminal``
(the live display of ``onsei stream``).
"""
