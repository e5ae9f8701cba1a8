#!/usr/bin/env python3
"""An independent reader of TensorBoard event files, for the end-to-end test.

It shares no code with obs/: its own CRC-32C, its own TFRecord framing and a
hand-written protobuf decoder for TensorFlow's Event and Summary field
numbers. Prints JSON: for each file, every scalar event as [step, tag,
value], and the file_version. Exits 1 on a bad CRC or a torn record.

    read_tfevents.py RUN_DIR...
"""
import json
import os
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def fields(buf):
    """Yields (field number, wire type, value) of a protobuf message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        yield num, wt, v


def varint(buf, i):
    shift = v = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def read_file(path):
    data = open(path, "rb").read()
    out = {"file_version": None, "scalars": []}
    i = 0
    while i < len(data):
        if len(data) - i < 12:
            sys.exit("%s: torn record header at byte %d" % (path, i))
        header = data[i:i + 8]
        (length,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", data[i + 8:i + 12])
        if hcrc != masked(header):
            sys.exit("%s: bad length CRC at byte %d" % (path, i))
        payload = data[i + 12:i + 12 + length]
        if len(payload) != length or len(data) < i + 16 + length:
            sys.exit("%s: torn record at byte %d" % (path, i))
        (dcrc,) = struct.unpack("<I", data[i + 12 + length:i + 16 + length])
        if dcrc != masked(payload):
            sys.exit("%s: bad data CRC at byte %d" % (path, i))
        i += 16 + length
        step = 0
        for num, wt, v in fields(payload):
            if num == 2 and wt == 0:
                step = v
            elif num == 3 and wt == 2:
                out["file_version"] = v.decode()
            elif num == 5 and wt == 2:
                for snum, swt, value in fields(v):
                    if snum != 1 or swt != 2:
                        continue
                    tag, simple = None, None
                    for vnum, vwt, x in fields(value):
                        if vnum == 1 and vwt == 2:
                            tag = x.decode()
                        elif vnum == 2 and vwt == 5:
                            (simple,) = struct.unpack("<f", x)
                    out["scalars"].append([step, tag, simple])
    return out


def main():
    result = {}
    for run in sys.argv[1:]:
        files = sorted(f for f in os.listdir(run) if f.startswith("events.out.tfevents."))
        result[run] = [read_file(os.path.join(run, f)) for f in files]
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
