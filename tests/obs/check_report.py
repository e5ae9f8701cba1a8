#!/usr/bin/env python3
"""Checks a deepfm report.html independently of the code that wrote it.

Usage: check_report.py REPORT.html
Parses the file as XML (so it must be well-formed XHTML), then prints JSON:
{"charts": {series_id: {"lines": [names], "points": n, "bars": n}},
 "scripts": n, "external": [attribute values that fetch from elsewhere],
 "tables": n}
Exits 1 with a message when the file is not well-formed.
"""
import json
import sys
import xml.etree.ElementTree as ET

XHTML = "{http://www.w3.org/1999/xhtml}"
SVG = "{http://www.w3.org/2000/svg}"


def main():
    try:
        root = ET.parse(sys.argv[1]).getroot()
    except ET.ParseError as e:
        print("not well-formed: %s" % e)
        return 1
    if root.tag != XHTML + "html":
        print("root element is %s, not XHTML's html" % root.tag)
        return 1
    charts = {}
    for svg in root.iter(SVG + "svg"):
        sid = svg.get("data-series")
        lines = [p.get("data-name") for p in svg.iter(SVG + "polyline")]
        points = sum(len(p.get("points", "").split()) for p in svg.iter(SVG + "polyline"))
        points += len(list(svg.iter(SVG + "circle")))
        bars = len([r for r in svg.iter(SVG + "rect") if r.get("class") == "bar"])
        if sid in charts:
            print("two charts for series %s" % sid)
            return 1
        charts[sid] = {"lines": lines, "points": points, "bars": bars}
    external = []
    for el in root.iter():
        for attr in ("href", "src", "{http://www.w3.org/1999/xlink}href"):
            v = el.get(attr)
            if v is not None and not v.startswith("#"):
                external.append(v)
    scripts = len(list(root.iter(XHTML + "script"))) + len(list(root.iter(SVG + "script")))
    tables = len(list(root.iter(XHTML + "table")))
    print(json.dumps({"charts": charts, "scripts": scripts, "external": external,
                      "tables": tables}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
