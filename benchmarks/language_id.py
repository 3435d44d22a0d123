"""Language identification with `base`: onsei's ``detect_language`` vs faster-whisper's.

Data: every clip of ../shared/data/multilingual/manifest.jsonl (12 clips, 8 languages).
onsei gets the file path (its own decoder); faster-whisper gets ``faster_whisper.decode_audio``
of the same file, as its ``detect_language`` takes a waveform. Both run once with vad_filter False
(faster-whisper's default) and once with vad_filter True (onsei's default, API and CLI).

Usage: .venv/bin/python benchmarks/language_id.py
"""

from __future__ import annotations

from dataclasses import dataclass

import common
from common import DATA_DIR

MANIFEST = DATA_DIR / "multilingual" / "manifest.jsonl"
MODEL = "base"


@dataclass
class Row:
    id: str
    expected: str
    vad: bool
    onsei: tuple[str, float]
    fw: tuple[str, float]
    fw_on_onsei_audio: tuple[str, float]
    """faster-whisper given onsei's decoded waveform: separates decoding from detection."""


def main() -> None:
    import faster_whisper

    import onsei
    from onsei.audio import load_audio
    from onsei.whisper.registry import resolve_whisper_model

    clips = common.read_manifest(MANIFEST)
    model = onsei.load_model(MODEL, device="cpu", compute_type="int8", threads=0)
    fw = faster_whisper.WhisperModel(
        str(resolve_whisper_model(MODEL)), device="cpu", compute_type="int8"
    )
    rows: list[Row] = []
    for vad in (False, True):
        for clip in clips:
            ranked = model.detect_language(clip.audio, vad_filter=vad)
            code, probability, _ = fw.detect_language(
                faster_whisper.decode_audio(str(clip.audio)), vad_filter=vad
            )
            same_code, same_p, _ = fw.detect_language(load_audio(clip.audio), vad_filter=vad)
            row = Row(
                clip.id,
                clip.language or "?",
                vad,
                ranked[0],
                (code, float(probability)),
                (same_code, float(same_p)),
            )
            rows.append(row)
            print(
                f"vad={vad!s:5} {clip.id:24} expected {row.expected}  "
                f"onsei {row.onsei[0]} {row.onsei[1]:.4f}  fw {row.fw[0]} {row.fw[1]:.4f}",
                flush=True,
            )
    common.write_section("language_id", report(rows, len(clips)))
    print(f"wrote {common.RESULTS}")


def report(rows: list[Row], n: int) -> str:
    table_rows = []
    summary = []
    for vad in (False, True):
        part = [r for r in rows if r.vad == vad]
        for r in part:
            table_rows.append(
                (
                    str(vad),
                    r.id,
                    r.expected,
                    f"{r.onsei[0]} {r.onsei[1]:.4f}",
                    f"{r.fw[0]} {r.fw[1]:.4f}",
                    f"{abs(r.onsei[1] - r.fw[1]):.1e}",
                    f"{r.fw_on_onsei_audio[0]} {r.fw_on_onsei_audio[1]:.4f}",
                )
            )
        onsei_ok = sum(r.onsei[0] == r.expected for r in part)
        fw_ok = sum(r.fw[0] == r.expected for r in part)
        same = sum(r.onsei[0] == r.fw[0] for r in part)
        exact = sum(r.onsei == r.fw_on_onsei_audio for r in part)
        summary.append(
            f"- vad_filter {vad}: correct onsei {onsei_ok}/{n}, faster-whisper {fw_ok}/{n}; "
            f"same top language {same}/{n}; largest probability difference "
            f"{max(abs(r.onsei[1] - r.fw[1]) for r in part):.1e}; given onsei's waveform, "
            f"faster-whisper's code and probability equal onsei's for {exact}/{n}\n"
        )
    table = common.markdown_table(
        [
            "vad_filter",
            "clip",
            "expected",
            "onsei",
            "faster-whisper",
            "abs diff of p",
            "faster-whisper on onsei's waveform",
        ],
        table_rows,
    )
    return (
        "## Language identification (base): onsei vs faster-whisper\n\n"
        + common.header(common.this_command())
        + "- Data: all 12 clips of `../shared/data/multilingual/manifest.jsonl`; expected = the "
        "manifest's `language` (`test_ja_en` is Japanese-English code-switching, labelled ja).\n"
        "- onsei: `load_model('base', device='cpu', compute_type='int8').detect_language(path, "
        "vad_filter=...)`, top entry. faster-whisper: `WhisperModel(dir, compute_type='int8')"
        ".detect_language(decode_audio(path), vad_filter=...)` (first 30 s, one segment, the "
        "defaults of both). The last column is faster-whisper given the waveform onsei decoded "
        "(`onsei.audio.load_audio`). The clips where the two sides differ are the 44.1/48 kHz "
        "ones (reazonspeech), which each side resamples itself: onsei to float32, "
        "`decode_audio` to 16-bit integers.\n\n" + "".join(summary) + "\n" + table
    )


if __name__ == "__main__":
    main()
