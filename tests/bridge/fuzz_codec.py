"""Coverage-guided fuzz target of the bridge's decoder (atheris, libFuzzer's engine).

Any frame must decode to a message with a checked header, or raise ProtocolError;
anything else (another exception, a crash, a hang) is a finding. Run it with libFuzzer
flags, e.g. a million inputs, or forever with a corpus folder:

    pip install atheris
    python tests/bridge/fuzz_codec.py -runs=1000000
    python tests/bridge/fuzz_codec.py -max_total_time=3600 fuzz-corpus/
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from sim_bridge import protocol as P

CODECS = (P.Codec(limits=P.REQUEST_LIMITS), P.Codec(limits=P.REPLY_LIMITS))


def one_input(data: bytes) -> None:
    codec = CODECS[data[0] & 1] if data else CODECS[0]
    try:
        msg = codec.decode(data[1:])
    except P.ProtocolError:
        return
    if msg["type"] not in P.MESSAGE_TYPES or msg["v"] != P.PROTOCOL_VERSION:
        raise AssertionError(f"unchecked header passed: {P.quote(msg)}")
    for key in ("action", "obs"):
        with contextlib.suppress(P.ProtocolError):
            codec.read_array(msg, key)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
