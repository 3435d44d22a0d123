"""Transcribe many files into output files: resumable, atomic, one bad file never stops the rest."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onsei.audio import SAMPLE_RATE, check_speech_audio, load_audio
from onsei.errors import AudioError, OnseiError, print_error
from onsei.inputs import expand_inputs
from onsei.languages import language_name
from onsei.recognizer import Recognizer, load_model
from onsei.transcript import Segment
from onsei.writers import SubtitleOptions, format_timestamp, save_transcript


@dataclass
class BatchReport:
    """What happened to each input."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@dataclass
class BatchTranscriber:
    """Runs one model over many inputs, writing ``<output_dir>/<stem>.<format>`` for each."""

    model: str
    options: dict[str, Any]
    output_dir: Path
    formats: list[str]
    subtitle_options: SubtitleOptions = field(default_factory=SubtitleOptions)
    device: str = "auto"
    compute_type: str = "default"
    threads: int = 0
    overwrite: bool = False
    verbose: bool = True
    diarization: dict[str, Any] | None = None
    """``onsei.diarize`` keywords: assign speakers to each transcript (None: do not)."""
    _recognizer: Recognizer | None = field(default=None, init=False, repr=False)

    def run(self, arguments: list[str]) -> BatchReport:
        """Transcribe every audio file the arguments name; report errors as single lines."""
        report = BatchReport()
        inputs = expand_inputs(arguments)
        for message in inputs.errors:
            print_error(message)
            report.failed.append(message)
        owners: dict[Path, Path] = {}
        for number, path in enumerate(inputs.files, start=1):
            outputs = self.output_paths(path)
            clash = next((owners[o] for o in outputs if o in owners), None)
            if clash is not None:
                message = (
                    f"{path}: its outputs would overwrite those of {clash}; "
                    "transcribe it with another --output_dir"
                )
                print_error(message)
                report.failed.append(message)
                continue
            owners.update(dict.fromkeys(outputs, path))
            if not self.overwrite and all(o.exists() for o in outputs):
                if self.verbose:
                    _status(f"skipping {path}: outputs exist (use --overwrite to redo)")
                report.skipped.append(path)
                continue
            if self.verbose and len(inputs.files) > 1:
                _status(f"[{number}/{len(inputs.files)}] {path}")
            try:
                self.transcribe_file(path, outputs)
            except OnseiError as error:
                print_error(str(error))
                report.failed.append(str(error))
                if not isinstance(error, AudioError):
                    break  # the model or options are at fault: every other file would fail too
            else:
                report.done.append(path)
        if len(inputs.files) + len(inputs.errors) > 1 and (self.verbose or report.failed):
            _status(
                f"{len(report.done)} transcribed, {len(report.skipped)} skipped, "
                f"{len(report.failed)} failed"
            )
        return report

    def output_paths(self, audio_path: Path) -> list[Path]:
        return [self.output_dir / f"{audio_path.stem}.{fmt}" for fmt in self.formats]

    def transcribe_file(self, path: Path, outputs: list[Path]) -> None:
        audio = load_audio(path)
        check_speech_audio(audio, str(path))
        recognizer = self.recognizer()
        printer = _SegmentPrinter(len(audio) / SAMPLE_RATE, self.verbose)
        try:
            transcript = recognizer.transcribe(
                audio,
                on_segment=printer.segment,
                on_language=printer.language if len(recognizer.languages) > 1 else None,
                **self.options,
            )
        finally:
            printer.close()
        if self.diarization is not None:
            from onsei.diarization import diarize

            transcript.assign_speakers(diarize(audio, **self.diarization))
        for output, fmt in zip(outputs, self.formats, strict=True):
            save_transcript(transcript, output, fmt, self.subtitle_options)

    def recognizer(self) -> Recognizer:
        """The model, loaded on first use (so a batch of bad files never loads it)."""
        if self._recognizer is None:
            self._recognizer = load_model(
                self.model, device=self.device, compute_type=self.compute_type, threads=self.threads
            )
        return self._recognizer


class _SegmentPrinter:
    """Prints segments to stdout as they arrive, with a progress bar on an interactive stderr."""

    def __init__(self, duration: float, verbose: bool):
        self.verbose = verbose
        self.bar = None
        if verbose and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=round(duration, 2),
                unit="s",
                unit_scale=False,
                leave=False,
                bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]",
            )

    def language(self, code: str, probability: float) -> None:
        if self.verbose:
            _status(f"Detected language: {language_name(code)} ({probability:.2f})")

    def segment(self, segment: Segment) -> None:
        if not self.verbose:
            return
        line = (
            f"[{format_timestamp(segment.start)} --> {format_timestamp(segment.end)}] "
            f"{segment.text}"
        )
        if self.bar is not None:
            self.bar.write(line, file=sys.stdout)
            self.bar.update(max(0.0, min(segment.end, self.bar.total) - self.bar.n))
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _status(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
