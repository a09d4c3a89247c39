#!/usr/bin/env python3
"""Prints, as JSON, what tifffile sees in a TIFF: used by tests/tools.rs.

usage: tifffile_probe.py FILE [REFERENCE.tif]
With a reference, also whether every pixel equals the reference's (NaN equal to NaN).
"""
import json
import sys

import numpy as np
import tifffile

path = sys.argv[1]
with tifffile.TiffFile(path) as tif:
    series = tif.series[0]
    report = {
        "shape": list(series.shape),
        "dtype": str(series.dtype),
        "is_imagej": tif.is_imagej,
        "is_bigtiff": tif.is_bigtiff,
        "compression": int(tif.pages[0].compression),
        "predictor": int(tif.pages[0].predictor),
    }
try:
    mapped = tifffile.memmap(path, mode="r")
    report["memmap_shape"] = list(mapped.shape)
except ValueError:
    report["memmap_shape"] = None
if len(sys.argv) > 2:
    actual = tifffile.imread(path)
    expected = tifffile.imread(sys.argv[2])
    report["equal"] = bool(actual.shape == expected.shape
                           and np.array_equal(actual, expected, equal_nan=True))
print(json.dumps(report))
