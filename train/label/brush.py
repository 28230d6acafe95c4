"""Label Studio's brush-mask RLE, read and written here.

The format is label-studio-sdk's (``label_studio_sdk.converter.brush``: ``encode_rle``,
``decode_rle``, ``mask2rle``), followed bit for bit: a 32-bit value count, a 5-bit word size
(minus 1), four 4-bit run-length field sizes (minus 1), then records: ``0`` + size index (2 bits)
+ count-1 + that many literal words, or ``1`` + size index + count-1 + one repeated word. The
values are the mask's RGBA pixels flattened (each mask pixel repeated 4 times).
The SDK itself is not a dependency: it pins numpy >= 2.2 and OpenCV 4.12 (a board's [pi]
extra needs numpy < 2) and pulls pandas, nltk and an HTTP client stack for these ~60 lines.
tests/label/test_brush.py checks both directions against the SDK in Label Studio's own venv.
"""

from __future__ import annotations

import numpy as np

WORD_BITS = 8
RLE_SIZES = (3, 4, 8, 16)  # bits of the run-length field, by the record's 2-bit index
MAX_RUN = 2**16


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(run lengths, run values) of a 1-D array."""
    ends = np.append(np.flatnonzero(values[1:] != values[:-1]), len(values) - 1)
    lengths = np.diff(np.append(-1, ends))
    return lengths, values[ends]


def _run_bits(length: int, value: int) -> str:
    word = f"{value:08b}"
    if length == 1:
        return "0" + "00" + "000" + word
    for index, size in enumerate(RLE_SIZES[:3]):
        if length <= 2**size:
            return f"1{index:02b}{length - 1:0{size}b}{word}"
    bits = []
    while length > MAX_RUN:  # the SDK's split of very long runs, kept as it is
        bits.append(f"111{MAX_RUN - 1:016b}{word}")
        length -= MAX_RUN
    bits.append(f"111{length - 1:016b}{word}")
    return "".join(bits)


def encode(values: np.ndarray) -> list[int]:
    """A flat uint8 array -> Label Studio RLE bytes (as a list of ints, like the SDK)."""
    values = np.asarray(values).ravel()
    head = f"{len(values):032b}{WORD_BITS - 1:05b}" + "".join(f"{s - 1:04b}" for s in RLE_SIZES)
    body = "".join(_run_bits(int(n), int(v)) for n, v in zip(*_runs(values), strict=True))
    bits = head + body
    bits += "0" * (8 - len(bits) % 8)  # the SDK pads 1 to 8 zero bits, never 0
    return [int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)]


def mask_to_rle(mask: np.ndarray) -> list[int]:
    """HxW 0/255 (or 0/1) mask -> RLE of its RGBA pixels (the SDK's mask2rle)."""
    mask = np.where(np.asarray(mask) > 0, 255, 0).astype(np.uint8)
    return encode(np.repeat(mask.ravel(), 4))


class _Bits:
    def __init__(self, data: list[int]):
        self.bits = np.unpackbits(np.asarray(data, dtype=np.uint8)).tobytes().translate(
            bytes.maketrans(b"\x00\x01", b"01")).decode()
        self.pos = 0

    def read(self, n: int) -> int:
        value = int(self.bits[self.pos:self.pos + n], 2)
        self.pos += n
        return value


def decode(rle: list[int]) -> np.ndarray:
    """Label Studio RLE -> the flat uint8 array (the SDK's decode_rle)."""
    bits = _Bits(rle)
    num, word = bits.read(32), bits.read(5) + 1
    sizes = [bits.read(4) + 1 for _ in range(4)]
    out = np.zeros(num, dtype=np.uint8)
    i = 0
    while i < num:
        repeated = bits.read(1)
        j = i + 1 + bits.read(sizes[bits.read(2)])
        if repeated:
            out[i:j] = bits.read(word)
        else:
            out[i:j] = [bits.read(word) for _ in range(j - i)]
        i = j
    return out


def rle_to_mask(rle: list[int], height: int, width: int) -> np.ndarray:
    """RLE -> HxW bool mask (the alpha channel of the RGBA image the RLE holds)."""
    values = decode(rle)
    if values.size != height * width * 4:
        raise ValueError(f"brush RLE holds {values.size} values, not {height}x{width}x4")
    return values.reshape(height, width, 4)[..., 3] > 0
