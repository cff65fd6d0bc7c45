"""The libraries a shared object links (its ``DT_NEEDED`` entries), read from the file.

The CUDA check (:mod:`streamrec.serving.providers`) cannot simply load onnxruntime's CUDA
provider to see whether it loads: outside onnxruntime's provider bridge its static initialisers
crash the process once its libraries are all there (measured here with stand-in CUDA libraries).
So it reads what the provider links, as ``readelf -d`` does, and loads those libraries instead.
The runtime image has no binutils; this reads the program headers of a 64-bit little-endian ELF
file (x86-64 and aarch64 Linux), a few kilobytes of a 280 MB file.
"""

from __future__ import annotations

import struct
from pathlib import Path

PT_LOAD, PT_DYNAMIC = 1, 2
DT_NULL, DT_NEEDED, DT_STRTAB = 0, 1, 5


def needed(path: Path) -> list[str]:
    """The ``DT_NEEDED`` sonames of the ELF file at ``path``, in link order. Raises ValueError
    for a file that is not a 64-bit little-endian ELF object with a dynamic section."""
    with path.open("rb") as f:
        header = f.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            raise ValueError(f"{path}: not a 64-bit little-endian ELF file")
        (phoff,) = struct.unpack_from("<Q", header, 32)
        phentsize, phnum = struct.unpack_from("<HH", header, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
        # (p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align) per header
        headers = [struct.unpack_from("<IIQQQQQQ", table, i * phentsize) for i in range(phnum)]
        dynamic = next((h for h in headers if h[0] == PT_DYNAMIC), None)
        if dynamic is None:
            raise ValueError(f"{path}: no dynamic section (a static executable?)")
        f.seek(dynamic[2])
        raw = f.read(dynamic[5])
        entries = []
        for i in range(0, len(raw) - 15, 16):
            tag, value = struct.unpack_from("<qQ", raw, i)
            if tag == DT_NULL:
                break
            entries.append((tag, value))
        strtab = next(v for t, v in entries if t == DT_STRTAB)  # a virtual address
        offset = next(h[2] + strtab - h[3] for h in headers if h[0] == PT_LOAD and h[3] <= strtab < h[3] + h[5])
        names = []
        for tag, value in entries:
            if tag == DT_NEEDED:
                f.seek(offset + value)
                names.append(f.read(256).split(b"\0", 1)[0].decode())
        return names
