"""Hostile pickles, built opcode by opcode so each trick is explicit (none of them may ever run)."""

from __future__ import annotations

import pickletools
from pathlib import Path

SNIFF_BAIT = b"S'torch_utils.persistence'\n0"  # a string + POP: makes the NVIDIA sniffer pick the file


def _s(text: str) -> bytes:
    """Protocol-0 STRING opcode."""
    return b"S" + repr(text).encode() + b"\n"


def shell(marker: Path) -> str:
    return f"touch {marker}"


def code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def raw_payloads(marker: Path) -> dict[str, bytes]:
    """name -> pickle bytes; each would create ``marker`` if unpickled by a full unpickler."""
    sh, py = shell(marker), code(marker)
    bodies = {
        "global_os_system": b"cos\nsystem\n(" + _s(sh) + b"tR.",
        "global_posix_system": b"cposix\nsystem\n(" + _s(sh) + b"tR.",
        "subprocess_call": b"csubprocess\ncall\n((" + _s("sh") + _s("-c") + _s(sh) + b"ltR.",
        "subprocess_popen": b"csubprocess\nPopen\n((" + _s("sh") + _s("-c") + _s(sh) + b"ltR.",
        "builtins_eval": b"cbuiltins\neval\n(" + _s(py) + b"tR.",
        "builtins_exec": b"cbuiltins\nexec\n(" + _s(py) + b"tR.",
        "getattr_import_chain": (b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(" + _s("os") + b"tR" + _s("system")
                                 + b"tR(" + _s(sh) + b"tR."),
        "copyreg_reconstructor": b"ccopyreg\n_reconstructor\n(cos\nsystem\ncbuiltins\nobject\nNtR.",
        "codecs_encode": b"c_codecs\nencode\n(" + _s(sh) + _s("latin1") + b"tR.",
        "inst_opcode": b"(" + _s(sh) + b"ios\nsystem\n.",
        "obj_opcode": b"(cos\nsystem\n" + _s(sh) + b"o.",
        "dotted_module_trick": b"cos.path\nos\n.",
        "nested_in_dict": b"}(" + _s("G_ema") + b"cos\nsystem\n(" + _s(sh) + b"tRu.",
        "nested_in_list_deep": b"((((cbuiltins\nexec\n(" + _s(py) + b"tRllll.",
        "torch_load_global": b"ctorch\nload\n(" + _s("/dev/null") + b"tR.",
        "numpy_load_global": b"cnumpy\nload\n(" + _s("/dev/null") + b"tR.",
        "pickle_loads_global": b"cpickle\nloads\n(" + _s("x") + b"tR.",
        "unregistered_extension": b"\x82\x01.",
    }
    # Protocol 2 header + the sniff bait keep every body a valid pickle the NVIDIA sniffer will pick.
    return {k: b"\x80\x02" + SNIFF_BAIT + v for k, v in bodies.items()}


def protocol4_payload(module: str, name: str, arg: str) -> bytes:
    """STACK_GLOBAL module.name, called with one string argument, result POPped (stack-neutral)."""

    def u(t: str) -> bytes:
        b = t.encode()
        return (b"\x8c" + bytes([len(b)]) + b) if len(b) < 256 else (b"X" + len(b).to_bytes(4, "little") + b)

    return u(module) + u(name) + b"\x93" + u(arg) + b"\x85R0"


def inject_after(data: bytes, after_string: str, payload: bytes) -> bytes:
    """Re-emit ``data`` without FRAME opcodes, inserting ``payload`` after the first op that pushes
    ``after_string`` (framing is optional, so the rest of the stream stays valid)."""
    ops = list(pickletools.genops(data))
    out = bytearray()
    done = False
    for i, (op, arg, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
        if op.name == "FRAME":
            continue
        out += data[pos:end]
        if not done and arg == after_string:
            out += payload
            done = True
    assert done, f"{after_string!r} not found in pickle"
    return bytes(out)


def replace_string(data: bytes, match: str, make: callable) -> bytes:
    """Re-emit ``data`` without frames, replacing the first unicode string op containing ``match``."""
    ops = list(pickletools.genops(data))
    out = bytearray()
    done = False
    for i, (op, arg, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
        if op.name == "FRAME":
            continue
        if not done and isinstance(arg, str) and match in arg and "UNICODE" in op.name:
            new = make(arg).encode()
            out += b"X" + len(new).to_bytes(4, "little") + new
            done = True
            continue
        out += data[pos:end]
    assert done
    return bytes(out)
