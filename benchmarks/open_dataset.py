"""Opening a prepared dataset: reading, hashing and schema-checking its manifest, at growing sizes.

``train`` opens the dataset once (it parsed the manifest 13 times and read it once more to hash it
before issue #15); this measures what one open costs for large datasets, with the manifest of a
real dataset repeated to N clips.

    python benchmarks/open_dataset.py --data data/notes --clips 1000 10000 100000
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def replicated_manifest(source: dict, data: Path, folder: Path, n: int) -> dict:
    """The manifest of ``data`` with its clips repeated to at least ``n``, each repeat pointing at
    its own symlinks to the shards: consistent, as opening checks counts and rows against them."""
    import math
    import os

    reps = math.ceil(n / len(source["clips"]))
    splits = {name: dict(info, shards=[], n_clips=0) for name, info in source["splits"].items()}
    clips = []
    for k in range(reps):
        for name, info in source["splits"].items():
            for shard in info["shards"]:
                os.symlink((data / shard["file"]).resolve(), folder / f"r{k}-{shard['file']}")
                splits[name]["shards"].append(dict(shard, file=f"r{k}-{shard['file']}"))
            splits[name]["n_clips"] += info["n_clips"]
        clips += [dict(c, index=len(clips) + i, shard=f"r{k}-{c['shard']}") for i, c in enumerate(source["clips"])]
    return dict(source, splits=splits, clips=clips)


def main():
    import jsonschema

    from vae_tfp.data.dataset import MANIFEST, MANIFEST_SCHEMA, open_dataset

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/notes")
    ap.add_argument("--clips", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--name", default="open_dataset")
    args = ap.parse_args()
    source = json.loads((Path(args.data) / MANIFEST).read_text())
    out = {"benchmark": "open_dataset", "machine": machine(), "data": args.data, "repeats": args.repeats,
           "method": "the manifest of --data with its clips (and symlinked shards) repeated to at least N; best of --repeats; 'open' = read + "
                     "SHA-256 + JSON parse + fastjsonschema check + config; 'jsonschema_check' = the same schema "
                     "checked by jsonschema's Draft202012Validator (the library first tried)",
           "results": {}}
    validator = jsonschema.Draft202012Validator(MANIFEST_SCHEMA)
    for n in args.clips:
        with tempfile.TemporaryDirectory() as folder:
            manifest = replicated_manifest(source, Path(args.data), Path(folder), n)
            (Path(folder) / MANIFEST).write_text(json.dumps(manifest, indent=1))

            def best(fn):
                times = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t0)
                return round(min(times), 4)

            parse = best(lambda: json.loads((Path(folder) / MANIFEST).read_bytes()))
            opened = best(lambda: open_dataset(folder))
            checked = best(lambda: jsonschema.exceptions.best_match(validator.iter_errors(manifest)))
            out["results"][n] = {"manifest_mb": round((Path(folder) / MANIFEST).stat().st_size / 2**20, 2),
                                 "json_parse_s": parse, "open_s": opened, "jsonschema_check_s": checked,
                                 "before_13_parses_s": round(13 * parse, 3)}
    emit(args.name, out)


if __name__ == "__main__":
    main()
