"""Writes the alarm and chime WAVs shipped in cgmtray/assets (stdlib only, repeatable)."""

from __future__ import annotations

import argparse
import math
import struct
import wave
from collections.abc import Callable, Sequence
from pathlib import Path

SAMPLE_RATE = 22_050
FULL_SCALE = 32_767
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "cgmtray" / "assets"

#: The urgent alarm: four harsh beeps alternating between two pitches, one second, loops seamlessly.
ALARM_TONES_HZ = (988.0, 784.0, 988.0, 784.0)
ALARM_BEEP_S = 0.18
ALARM_GAP_S = 0.07
ALARM_LEVEL = 0.8
EDGE_S = (
    0.005  # attack and release of each beep, so it clicks neither at start nor at the loop seam
)

#: The gentle chime: two soft bell notes, the second a fifth above, fading out.
CHIME_NOTES = ((0.0, 659.25), (0.16, 987.77))
CHIME_LENGTH_S = 1.2
CHIME_DECAY_S = 0.3
CHIME_LEVEL = 0.4


def _ramp(t: float, length: float) -> float:
    """1 inside the beep, a linear ramp over EDGE_S at both ends."""
    return min(1.0, t / EDGE_S, (length - t) / EDGE_S)


def _buzz(frequency: float, t: float) -> float:
    """A square-ish tone (odd harmonics): harder to ignore than a pure sine."""
    phase = 2.0 * math.pi * frequency * t
    return (math.sin(phase) + math.sin(3 * phase) / 3 + math.sin(5 * phase) / 5) / 0.95


def alarm_samples() -> list[float]:
    """One second of the urgent alarm, as floats in -1..1."""
    samples: list[float] = []
    beep_frames = round(ALARM_BEEP_S * SAMPLE_RATE)
    gap_frames = round(ALARM_GAP_S * SAMPLE_RATE)
    for frequency in ALARM_TONES_HZ:
        for frame in range(beep_frames):
            t = frame / SAMPLE_RATE
            samples.append(ALARM_LEVEL * _ramp(t, ALARM_BEEP_S) * _buzz(frequency, t))
        samples.extend([0.0] * gap_frames)
    return samples


def _bell(frequency: float, t: float) -> float:
    """A decaying sine with a quiet octave: a soft bell."""
    envelope = math.exp(-t / CHIME_DECAY_S) * min(1.0, t / EDGE_S)
    phase = 2.0 * math.pi * frequency * t
    return envelope * (math.sin(phase) + 0.25 * math.sin(2 * phase)) / 1.25


def chime_samples() -> list[float]:
    """The gentle chime for non-urgent alerts, as floats in -1..1."""
    total = round(CHIME_LENGTH_S * SAMPLE_RATE)
    fade_frames = round(0.05 * SAMPLE_RATE)
    samples: list[float] = []
    for frame in range(total):
        t = frame / SAMPLE_RATE
        value = sum(_bell(f, t - start) for start, f in CHIME_NOTES if t >= start)
        tail = min(1.0, (total - 1 - frame) / fade_frames)
        samples.append(CHIME_LEVEL * value * tail)
    return samples


def write_wav(path: Path, samples: Sequence[float]) -> None:
    """16-bit mono PCM at SAMPLE_RATE."""
    pcm = [max(-FULL_SCALE, min(FULL_SCALE, round(s * FULL_SCALE))) for s in samples]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(struct.pack(f"<{len(pcm)}h", *pcm))


SOUNDS: dict[str, Callable[[], list[float]]] = {"alarm": alarm_samples, "chime": chime_samples}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write into")
    args = parser.parse_args(argv)
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, make in SOUNDS.items():
        write_wav(out_dir / f"{name}.wav", make())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
