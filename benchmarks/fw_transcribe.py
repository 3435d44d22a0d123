"""The peer side of the overhead and startup benchmarks: faster-whisper alone, no onsei.

Loads a CTranslate2 Whisper directory with int8 on CPU, transcribes one file with the given
options, consumes the segments and writes them as JSON.

Usage: python benchmarks/fw_transcribe.py MODEL_DIR AUDIO OUT.json
       [--language en] [--beam_size 5] [--vad_filter False]
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("audio")
    parser.add_argument("output")
    parser.add_argument("--language", default=None)
    parser.add_argument("--beam_size", type=int, default=5)
    parser.add_argument("--vad_filter", choices=("True", "False"), default="False")
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    model = WhisperModel(args.model_dir, device="cpu", compute_type="int8")
    segments, info = model.transcribe(
        args.audio,
        language=args.language,
        beam_size=args.beam_size,
        vad_filter=args.vad_filter == "True",
    )
    result = [
        {"id": s.id, "start": s.start, "end": s.end, "text": s.text, "tokens": s.tokens}
        for s in segments
    ]
    with open(args.output, "w", encoding="utf-8") as file:
        json.dump(
            {
                "text": "".join(s["text"] for s in result).strip(),
                "language": info.language,
                "duration": info.duration,
                "segments": result,
            },
            file,
            ensure_ascii=False,
        )
        file.write("\n")


if __name__ == "__main__":
    main()
