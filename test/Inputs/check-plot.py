#!/usr/bin/env python3
"""Reads a --plot SVG as XML and prints one line per curve, "NAME POINTS",
then the tick labels of each panel's axes ("ticks: ..."); exits 1 when the
file is not well-formed XML or not an SVG.

    check-plot.py FILE.svg
"""
import sys
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"


def main():
    try:
        root = ET.parse(sys.argv[1]).getroot()
    except ET.ParseError as e:
        print("check-plot: not XML: %s" % e)
        sys.exit(1)
    if root.tag != SVG + "svg":
        print("check-plot: the root is %s, not svg" % root.tag)
        sys.exit(1)
    for panel in root.iter(SVG + "g"):
        texts = [t.text for t in panel.iter(SVG + "text")]
        print("panel: " + texts[0])
        for line in panel.iter(SVG + "polyline"):
            points = line.get("points").split()
            for p in points:
                x, y = (float(v) for v in p.split(","))
            print("%s %d" % (line.get("data-curve"), len(points)))
        print("texts: " + " ".join(texts[1:]))


main()
