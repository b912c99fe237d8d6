"""Where the time goes: PyTorch profiler tables of our model and its PyTorch twin.

Profiles one training epoch (``model.fit``) or one ``model.predict`` of the
library model on the torch backend and the same work done by the
hand-written twin from ``torch_reference.py``, and prints the operators
sorted by their own CPU time. ``UNIVERSAL_MODELS_FAST_PATHS=0`` profiles the
generic ``keras.ops`` code instead of the layers' fast paths (the "before").

    KERAS_BACKEND=torch python benchmarks/profile_torch.py unet16 train --threads 1
    UNIVERSAL_MODELS_FAST_PATHS=0 KERAS_BACKEND=torch python benchmarks/profile_torch.py segnet16 infer
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from benchmarks import common, torch_reference  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=sorted(torch_reference.TWINS))
    parser.add_argument("task", choices=["train", "infer"])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1 is steadier on a busy machine)")
    parser.add_argument("--rows", type=int, default=20)
    common.add_memory_option(parser)
    args = parser.parse_args(argv)
    allocator = common.apply_memory_option(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(common.machine_line(allocator))
    model, reference = torch_reference.build_twins(args.model, args.size)
    images, labels = common.synthetic_batch(args.batch * args.steps, args.size, args.size, 3, 2)
    ours = common.keras_runners(model, images, labels, args.batch)
    theirs = torch_reference._reference_runners(reference, images, labels, args.steps, channels_last=False)
    index = 0 if args.task == "train" else 1
    for name, function in (("ours (Keras, torch backend)", ours[index]), ("PyTorch twin", theirs[index])):
        function()  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            function()
        print(f"\n## {name}: {args.model} {args.task}, {args.size}x{args.size}, batch {args.batch}, "
              f"{args.steps} steps")
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows,
                                            max_name_column_width=45))


if __name__ == "__main__":
    main()
