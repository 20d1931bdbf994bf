"""Decoding fixtures for `datasets/tests/decode_parity.rs`: PIL's pixels, which torchvision sees.

Reference = `PIL.Image.open(path).convert("RGB")`, as torchvision's detection references load
images (PIL decodes JPEG with libjpeg-turbo: islow IDCT, fancy upsampling). Needs Pillow and
pypng from PyPI in a virtualenv outside the repository:

    python3 -m venv /work/venv-h17 && /work/venv-h17/bin/pip install pillow pypng
    /work/venv-h17/bin/python scripts/make_decode_fixtures.py            # write the fixtures
    /work/venv-h17/bin/python scripts/make_decode_fixtures.py --compare DIR

Writes into datasets/tests/fixtures/decode/:
- coco_jpeg_sha256.json: for every JPEG of ../shared/data/{coco128,coco_val80}/images, keyed
  "set/file.jpg": width, height and the SHA-256 of PIL's RGB bytes (row-major, R G B).
- small images made here, and small.json with each one's width, height and PIL's RGB bytes (hex):
  PNG 8-bit RGB, 16-bit RGB, 8-bit RGBA, 16-bit RGBA, palette with tRNS, grey, 16-bit grey (also
  with values below 256), grey+alpha (8 and 16 bit), 1-bit grey, interlaced (Adam7) 8 and 16 bit; JPEG 4:2:0, 4:2:2,
  4:4:4 and progressive at odd sizes, CMYK (Adobe, as PIL writes it) and one with EXIF
  Orientation 6 (PIL does not rotate it, nor does torchvision: the pixels stay as stored).
  PIL cannot write interlaced or 16-bit colour PNGs, so pypng writes those; PIL reads them all.

--compare DIR: DIR holds our decodes as `<key with / replaced by __>.rgb` (the parity test writes
them when a hash differs, and says where); prints, per image, the max abs difference and the
number of differing pixels against PIL.
"""
import hashlib
import json
import os
import sys
import warnings

import png  # pypng
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "datasets", "tests", "fixtures", "decode")
DATA = os.path.join(ROOT, "..", "shared", "data")
SETS = ["coco128", "coco_val80"]


def pil_rgb(path):
    with Image.open(path) as im:
        return im.convert("RGB")


def coco_keys():
    for s in SETS:
        for name in sorted(os.listdir(os.path.join(DATA, s, "images"))):
            if name.endswith(".jpg"):
                yield f"{s}/{name}", os.path.join(DATA, s, "images", name)


def pattern(w, h, channels, maxval, seed):
    """Deterministic, varied pixel rows (no flat areas) for pypng."""
    rows = []
    for y in range(h):
        row = []
        for x in range(w):
            for c in range(channels):
                row.append((x * 37 + y * 101 + c * 59 + seed * 13 + x * y * 7) * 2654435761 % (maxval + 1))
        rows.append(row)
    return rows


def photo(w, h):
    """A smooth RGB image with edges, so JPEG chroma upsampling and the IDCT both matter."""
    im = Image.new("RGB", (w, h))
    im.putdata([((x * 255) // w, (y * 255) // h, ((x + y) * 97) % 256) for y in range(h) for x in range(w)])
    return im


def write_png_rows(name, w, h, rows, **kw):
    with open(os.path.join(OUT, name), "wb") as f:
        png.Writer(w, h, **kw).write(f, rows)


def make_small():
    names = []
    # PNG written by pypng: 16-bit colour, alpha at 16 bits, interlaced.
    for name, ch, bits, kw in [
        ("rgb8.png", 3, 8, dict(greyscale=False)),
        ("rgb16.png", 3, 16, dict(greyscale=False)),
        ("rgba8.png", 4, 8, dict(greyscale=False, alpha=True)),
        ("rgba16.png", 4, 16, dict(greyscale=False, alpha=True)),
        ("grey8.png", 1, 8, dict(greyscale=True)),
        ("grey16.png", 1, 16, dict(greyscale=True)),
        ("grey16_low.png", 1, 9, dict(greyscale=True, bitdepth=16)),  # 0..511: PIL clips at 255
        ("grey_alpha8.png", 2, 8, dict(greyscale=True, alpha=True)),
        ("grey_alpha16.png", 2, 16, dict(greyscale=True, alpha=True)),
        ("grey1.png", 1, 1, dict(greyscale=True)),
        ("interlaced_rgb8.png", 3, 8, dict(greyscale=False, interlace=True)),
        ("interlaced_rgba16.png", 4, 16, dict(greyscale=False, alpha=True, interlace=True)),
    ]:
        w, h = 13, 9
        kw.setdefault("bitdepth", bits)
        write_png_rows(name, w, h, pattern(w, h, ch, (1 << bits) - 1, len(names)), **kw)
        names.append(name)
    # Palette with a tRNS chunk, written by PIL.
    warnings.filterwarnings("ignore", "Palette images with Transparency")
    im = Image.new("P", (11, 7))
    im.putpalette([v for i in range(16) for v in (i * 16, 255 - i * 16, (i * 53) % 256)])
    im.putdata([(x + 3 * y) % 16 for y in range(7) for x in range(11)])
    im.save(os.path.join(OUT, "palette_trns.png"), transparency=bytes([0, 128, 255] + [200] * 13))
    names.append("palette_trns.png")
    # JPEGs written by PIL (libjpeg-turbo), odd sizes so the edge blocks are partial.
    for name, kw in [
        ("ycc420.jpg", dict(subsampling=2)),
        ("ycc422.jpg", dict(subsampling=1)),
        ("ycc444.jpg", dict(subsampling=0)),
        ("progressive.jpg", dict(subsampling=2, progressive=True)),
    ]:
        photo(37, 23).save(os.path.join(OUT, name), quality=85, **kw)
        names.append(name)
    # CMYK: four flat patches plus a gradient, as PIL writes CMYK (Adobe APP14, inverted).
    cmyk = Image.new("CMYK", (40, 24))
    cmyk.putdata([((x * 6) % 256, (y * 10) % 256, ((x + y) * 4) % 256, (x * y) % 256) for y in range(24) for x in range(40)])
    cmyk.save(os.path.join(OUT, "cmyk.jpg"), quality=90)
    names.append("cmyk.jpg")
    # EXIF Orientation 6 ("rotate 90 CW to display"): stored 30x20, shown as 20x30 by viewers.
    exif = Image.Exif()
    exif[0x0112] = 6
    photo(30, 20).save(os.path.join(OUT, "exif_rotated.jpg"), quality=90, exif=exif.tobytes())
    names.append("exif_rotated.jpg")

    small = {}
    for name in names:
        rgb = pil_rgb(os.path.join(OUT, name))
        small[name] = {"width": rgb.width, "height": rgb.height, "rgb_hex": rgb.tobytes().hex()}
    with Image.open(os.path.join(OUT, "exif_rotated.jpg")) as im:
        assert im.getexif().get(0x0112) == 6 and im.size == (30, 20), "EXIF fixture"
    return small


def compare(ours_dir):
    """Max abs difference and differing-pixel count of our decodes against PIL's."""
    for f in sorted(os.listdir(ours_dir)):
        if not f.endswith(".rgb"):
            continue
        key = f[: -len(".rgb")].replace("__", "/")
        if "/" in key:
            s, name = key.split("/")
            path = os.path.join(DATA, s, "images", name)
        else:
            path = os.path.join(OUT, key)
        ref = pil_rgb(path).tobytes()
        ours = open(os.path.join(ours_dir, f), "rb").read()
        if len(ours) != len(ref):
            print(f"{key}: size differs: ours {len(ours)} bytes, PIL {len(ref)}")
            continue
        diff = [abs(a - b) for a, b in zip(ours, ref)]
        pixels = sum(1 for i in range(0, len(diff), 3) if any(diff[i : i + 3]))
        print(f"{key}: max abs diff {max(diff)}, differing pixels {pixels} of {len(ref) // 3}")


def main():
    if sys.argv[1:2] == ["--compare"]:
        compare(sys.argv[2])
        return
    os.makedirs(OUT, exist_ok=True)
    hashes = {}
    for key, path in coco_keys():
        rgb = pil_rgb(path)
        hashes[key] = {"width": rgb.width, "height": rgb.height, "sha256": hashlib.sha256(rgb.tobytes()).hexdigest()}
    assert len(hashes) == 208, len(hashes)
    with open(os.path.join(OUT, "coco_jpeg_sha256.json"), "w") as f:
        json.dump(hashes, f, indent=1, sort_keys=True)
    with open(os.path.join(OUT, "small.json"), "w") as f:
        json.dump(make_small(), f, indent=1, sort_keys=True)
    print(f"wrote {len(hashes)} COCO hashes and the small images to {OUT}")


if __name__ == "__main__":
    main()
