"""ITU-R BS.1770-4 integrated loudness, measured block by block in bounded memory.

The signal is K-weighted (a high shelf, +4 dB above ~1.5 kHz, then a ~38 Hz high pass: the two
biquads of BS.1770, designed for the file's rate exactly as pyloudnorm designs them), the
filter state carried from block to block. Each channel's squared output is weighted (1.0 for
front channels, 1.41 for the surrounds, 0 for LFE) and summed into 100 ms sub-blocks; four
consecutive sub-blocks make one 400 ms gating block, so blocks overlap by 75 %. The
integrated loudness is the mean power of the blocks above the absolute gate (−70 LUFS) and
the relative gate (10 LU below the mean of the blocks above the absolute gate).

Memory: one float per 100 ms (6,000 for 10 minutes), whatever the rate and channel count.
"""

from __future__ import annotations

import math

import numpy as np

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
SUB_BLOCKS_PER_SECOND = 10
"""100 ms sub-blocks."""
SUB_BLOCKS_PER_GATE = 4
"""400 ms gating blocks, stepped by one sub-block (75 % overlap)."""
RUNG_OUT = 1e-100
"""Filter state below this (after a stretch of zeros) counts as rung out (it would otherwise
decay into a limit cycle among the denormals, ~1e-322, and never reach 0)."""
SURROUND_GAIN = 1.41
# BS.1770-4 channel weights for the standard WAV/FLAC channel orders (1 … 8 channels):
# L R C = 1, LFE = 0 (not counted), side/rear surrounds near ±110° = 1.41, back surrounds of
# 6.1/7.1 (beyond ±120°) = 1.
CHANNEL_WEIGHTS = {
    1: (1.0,),
    2: (1.0, 1.0),
    3: (1.0, 1.0, 1.0),                                                            # L R C
    4: (1.0, 1.0, SURROUND_GAIN, SURROUND_GAIN),                                   # L R Ls Rs
    5: (1.0, 1.0, 1.0, SURROUND_GAIN, SURROUND_GAIN),                              # L R C Ls Rs
    6: (1.0, 1.0, 1.0, 0.0, SURROUND_GAIN, SURROUND_GAIN),                         # 5.1: L R C LFE Ls Rs
    7: (1.0, 1.0, 1.0, 0.0, 1.0, SURROUND_GAIN, SURROUND_GAIN),                    # 6.1: … LFE Cs Ls Rs
    8: (1.0, 1.0, 1.0, 0.0, 1.0, 1.0, SURROUND_GAIN, SURROUND_GAIN),               # 7.1: … LFE Lb Rb Ls Rs
}


def k_weighting(rate: int) -> np.ndarray:
    """The two K-weighting biquads at ``rate`` Hz as second-order sections ``(2, 6)``
    ``[b0 b1 b2 a0 a1 a2]``: pyloudnorm's design (RBJ cookbook shelf and high pass)."""
    from pyloudnorm.iirfilter import IIRfilter

    shelf = IIRfilter(4.0, 1 / math.sqrt(2), 1500.0, rate, "high_shelf")
    high_pass = IIRfilter(0.0, 0.5, 38.0, rate, "high_pass")
    return np.array([np.concatenate([f.b, f.a]) for f in (shelf, high_pass)])


class LoudnessMeter:
    """Feed ``add(block)`` with consecutive ``(frames, channels)`` blocks, then read
    ``integrated()`` (LUFS; ``-inf`` when every block is below the absolute gate)."""

    def __init__(self, rate: int, channels: int):
        weights = np.array(CHANNEL_WEIGHTS[channels])
        self.used = np.flatnonzero(weights)        # LFE is skipped, not filtered
        self.weights = weights[self.used]
        self.rate = rate
        self.sos = k_weighting(rate)
        self.state: np.ndarray | None = None        # (sections, channels used, 2)
        self.frames = 0                             # samples fed so far, per channel
        self.sub_blocks: list[np.ndarray] = []      # weighted sums of squares per 100 ms, a run per block
        self.completed = 0                          # sub-blocks in those runs
        self.partial = 0.0                          # the unfinished sub-block's sum so far

    def add(self, block: np.ndarray) -> None:
        """K-weight ``block`` (float32 or float64) and add its power to the 100 ms sub-blocks."""
        from scipy.signal import sosfilt, sosfilt_zi

        if self.state is not None and np.abs(self.state).max() < RUNG_OUT and not block.any():
            # Digital silence once the filters have rung out: the output is 0 to within 1e-190 of
            # power (the gate is at 1e-7), so skip the filtering; a file of mostly zeros costs its decoding.
            self.state[:] = 0.0
            self._split(np.zeros(0), silent_frames=len(block))
            return
        used = block if len(self.used) == block.shape[1] else block[:, self.used]
        channels = np.ascontiguousarray(used.T)             # (channels used, frames); sosfilt makes it float64
        if self.state is None:
            # Start as if the first sample had always been there: a file that starts (or stays) at a
            # constant offset gives no click of its own (a DC offset is inaudible; K-weighting removes it).
            self.state = sosfilt_zi(self.sos)[:, None, :] * channels[None, :, :1].astype(np.float64)
        filtered, self.state = sosfilt(self.sos, channels, axis=-1, zi=self.state)
        power = self.weights @ np.multiply(filtered, filtered, out=filtered)   # (frames,)
        self._split(power)

    def _split(self, power: np.ndarray, silent_frames: int = 0) -> None:
        """Add per-sample ``power`` (or ``silent_frames`` samples of zero power) to the
        sub-blocks; sub-block k ends at sample ⌊k·rate/10⌋."""
        start, end = self.frames, self.frames + len(power) + silent_frames
        first = self.completed + 1
        last = (SUB_BLOCKS_PER_SECOND * (end + 1) - 1) // self.rate   # the last k whose boundary is ≤ end
        ends = np.arange(first, last + 1) * self.rate // SUB_BLOCKS_PER_SECOND - start
        if silent_frames:  # the unfinished sub-block ends with what it had; the others are 0
            totals, block_total = np.full(len(ends), self.partial), self.partial
        else:
            # running[i]: the unfinished sub-block's sum plus the first i samples of this block
            running = self.partial + np.concatenate([[0.0], np.cumsum(power)])    # (frames + 1,)
            totals, block_total = running[ends], running[-1]
        if len(ends):
            self.sub_blocks.append(np.diff(totals, prepend=0.0))
            self.completed += len(ends)
            self.partial = block_total - totals[-1]
        else:
            self.partial = block_total
        self.frames = end

    def integrated(self) -> float:
        """Integrated loudness (LUFS) of everything fed so far; ``-inf`` for silence."""
        sums = np.concatenate(self.sub_blocks) if self.sub_blocks else np.zeros(0)
        if len(sums) < SUB_BLOCKS_PER_GATE:
            return -math.inf
        bounds = np.arange(len(sums) + 1) * self.rate // SUB_BLOCKS_PER_SECOND      # sub-block edges (samples)
        window = np.maximum(np.convolve(sums, np.ones(SUB_BLOCKS_PER_GATE), mode="valid"), 0)  # 400 ms sums (≥ 0 despite rounding)
        mean_square = window / (bounds[SUB_BLOCKS_PER_GATE:] - bounds[:-SUB_BLOCKS_PER_GATE])
        with np.errstate(divide="ignore"):
            block_lufs = -0.691 + 10 * np.log10(mean_square)
        audible = block_lufs >= ABSOLUTE_GATE_LUFS
        if not audible.any():
            return -math.inf
        relative_gate = -0.691 + 10 * math.log10(mean_square[audible].mean()) + RELATIVE_GATE_LU
        gated = audible & (block_lufs > relative_gate)
        return float(-0.691 + 10 * math.log10(mean_square[gated].mean()))
