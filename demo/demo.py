"""FastSAM2 demo: the four tasks on an image, a video file or a JPEG frame folder.

    python demo/demo.py IMAGE --config CFG [--checkpoint W] --task interactive_image \\
        --points "320,200,1 100,80,0; 500,300,1" --boxes "250,150,400,300; -" --texts "person; -"
    python demo/demo.py IMAGE --config CFG --task panoptic
    python demo/demo.py VIDEO --config CFG --task vos --first-mask 00000.png
    python demo/demo.py VIDEO --config CFG --task interactive_video --prompts-file prompts.json \\
        [--frame-prompts-stdin < more_prompts.jsonl]

IMAGE is a JPEG / PNG file; VIDEO an mp4 / avi / webm / mov / mkv file or a folder of JPEG / PNG
frames (file-name order). Outputs go to --out-dir as <input stem>_<task>.*:

- interactive_image: .png (overlay) and .json (per object: COCO RLE, area, bbox, score, prompts);
- panoptic: .png (COCO panoptic PNG: each segment id is its colour), _overlay.png, .json
  (segments_info with category_id = the model's class index and category_name);
- vos, interactive_video: .mp4 (overlay), <stem>_<task>/NNNNN.png (DAVIS palette: pixel = object
  id) and .json (per frame, per object: COCO RLE, area, bbox).

Prompts are in input pixels. --points / --boxes / --texts list objects separated by ';' (ids 1..N;
on frame 0 for interactive_video): for one object --points has clicks "x,y,label" separated by
spaces (label 1 positive, 0 negative), --boxes one "x1,y1,x2,y2", --texts one text; '-' leaves
that kind out for the object.

vos: --first-mask is a DAVIS palette PNG (object ids = palette indices, 255 void) or a binary 0/255
PNG (object 1) of the frames' size, applied on frame 0.

interactive_video: --prompts-file is a JSON list of entries keyed by frame:
    [{"frame": 0, "obj_id": 1, "points": [[x, y], ...], "labels": [1, 0, ...]},
     {"frame": 0, "obj_id": 2, "box": [x1, y1, x2, y2], "text": "a dog"},
     {"frame": 7, "obj_id": 3, "mask": "obj3.png"}]
("obj_id" 1..254 required, "frame" default 0, labels default all 1, "mask" a PNG relative to the
file; see seg/apis/demo_runner.py). --frame-prompts-stdin reads more entries from stdin, one JSON
object per line: piped stdin is read to its end before propagation (scripted runs are
reproducible); a terminal is read live, each line taking effect from the next frame propagation
reaches (lines for frames already passed are reported and skipped). Tracking runs from frame 0 to
the end; an object joins on the first frame it is prompted on.

Per-frame latency (decode, preprocessing, model, masks to the host at input resolution; not the
writing of outputs) is printed as mean / p50 / p90 at the end.
"""
import argparse
import os.path as osp
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from seg.apis import FastSAM2VideoPredictor, SegPredictor  # noqa: E402
from seg.apis.demo_runner import (  # noqa: E402
    DemoInputError,
    PromptSpec,
    StdinPrompts,
    check_specs,
    load_prompts_file,
    parse_cli_prompts,
    read_id_masks,
    run_interactive_image,
    run_panoptic,
    run_video,
)
from seg.apis.image_predictor import DEFAULT_IMAGE_SIZE  # noqa: E402
from seg.apis.video_io import open_video  # noqa: E402
from seg.utils.precision import PRECISIONS, check_precision  # noqa: E402
from seg.utils.validation import DEFAULT_MAX_INPUT_PIXELS, read_image_file  # noqa: E402

IMAGE_TASKS = ('interactive_image', 'panoptic')
VIDEO_TASKS = ('interactive_video', 'vos')
TASKS = IMAGE_TASKS + VIDEO_TASKS
# the flags each task takes besides the common ones (a flag another task needs is an error)
TASK_FLAGS = {'interactive_image': ('points', 'boxes', 'texts'),
              'panoptic': ('score_thr',),
              'vos': ('first_mask',),
              'interactive_video': ('points', 'boxes', 'texts', 'prompts_file', 'frame_prompts_stdin')}
UNTRAINED_BANNER = """
################################################################################
#  WARNING: no --checkpoint given: the model has RANDOM weights (untrained).  #
#  Its masks are meaningless; pass --checkpoint PATH of a trained model.      #
################################################################################
"""


def device_arg(text: str) -> str:
    if not re.fullmatch(r'cpu|cuda(:\d+)?', text):
        raise argparse.ArgumentTypeError(f'--device must be cpu, cuda or cuda:N, got {text!r}')
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('input', help='image file (image tasks); video file or frame folder')
    parser.add_argument('--config', required=True, help='model config (video tasks: a FastSAM2 '
                        'config with a streaming memory, e.g. configs/fastsam2/model_fastsam2_tiny.py)')
    parser.add_argument('--checkpoint', help='local checkpoint (default: random weights, with a warning)')
    parser.add_argument('--task', required=True, choices=TASKS)
    parser.add_argument('--points', help='"x,y,label x,y,label; x,y,label" (objects split by ";")')
    parser.add_argument('--boxes', help='"x1,y1,x2,y2; -" (one box per object)')
    parser.add_argument('--texts', help='"a dog; -" (one text per object)')
    parser.add_argument('--first-mask', help='vos: DAVIS palette or binary PNG of frame 0')
    parser.add_argument('--prompts-file', help='interactive_video: JSON list of prompt entries')
    parser.add_argument('--frame-prompts-stdin', action='store_true',
                        help='interactive_video: read more prompt entries from stdin, one per line')
    parser.add_argument('--score-thr', type=float,
                        help='panoptic: object mask threshold (default: the config\'s)')
    parser.add_argument('--out-dir', default='outputs/demo')
    parser.add_argument('--device', default='cpu', type=device_arg, help='cpu, cuda or cuda:N')
    parser.add_argument('--precision', default='fp32', choices=tuple(PRECISIONS),
                        help='fp32, or autocast to fp16 / bf16 (bf16 also on CPU)')
    parser.add_argument('--image-size', type=int, default=DEFAULT_IMAGE_SIZE,
                        help='longer side the network sees (masks come back at input resolution)')
    parser.add_argument('--max-input-pixels', type=int, default=DEFAULT_MAX_INPUT_PIXELS,
                        help='reject inputs (image, video frames) with more pixels than this '
                             f'(default {DEFAULT_MAX_INPUT_PIXELS})')
    return parser


def check_flags(args: argparse.Namespace) -> None:
    """A prompt flag the task does not use is a mistake (e.g. --points with vos)."""
    given = [f for f in ('points', 'boxes', 'texts', 'first_mask', 'prompts_file',
                         'frame_prompts_stdin', 'score_thr') if getattr(args, f) not in (None, False)]
    wrong = [f for f in given if f not in TASK_FLAGS[args.task]]
    if wrong:
        flags = ', '.join('--' + f.replace('_', '-') for f in wrong)
        raise DemoInputError(f'--task {args.task} does not take {flags}')
    if args.task == 'vos' and args.first_mask is None:
        raise DemoInputError('--task vos needs --first-mask PNG (the objects on frame 0)')
    if args.image_size is not None and args.image_size < 32:
        raise DemoInputError(f'--image-size must be >= 32, got {args.image_size}')
    if args.max_input_pixels < 1:
        raise DemoInputError(f'--max-input-pixels must be >= 1, got {args.max_input_pixels}')
    if args.device.startswith('cuda'):
        import torch
        if not torch.cuda.is_available():
            raise DemoInputError(f'--device {args.device}: CUDA is not available on this machine')
    try:
        check_precision(args.precision, args.device)
    except ValueError as err:
        raise DemoInputError(f'--precision: {err}') from None


def read_image(path: str, max_pixels: Optional[int] = DEFAULT_MAX_INPUT_PIXELS) -> Any:
    """BGR uint8 image, or a DemoInputError naming the file (missing, a folder, empty, corrupt,
    truncated, above ``max_pixels``)."""
    if osp.isdir(path):
        raise DemoInputError(f'image tasks take one image file, got the folder {path}')
    try:
        return read_image_file(path, 'input image', max_pixels, mode='BGR')
    except (FileNotFoundError, ValueError) as e:
        raise DemoInputError(str(e)) from None


def video_prompts(args: argparse.Namespace, frame_hw: Tuple[int, int], num_frames: int
                  ) -> Tuple[List[PromptSpec], Optional[StdinPrompts]]:
    """(specs known before propagation, the live stdin reader or None)."""
    if args.task == 'vos':
        masks = read_id_masks(args.first_mask, frame_hw)
        return [PromptSpec(obj_id=k, mask=m, where=f'--first-mask object {k}')
                for k, m in masks.items()], None
    specs: List[PromptSpec] = parse_cli_prompts(args.points, args.boxes, args.texts)
    if args.prompts_file:
        specs += load_prompts_file(args.prompts_file, frame_hw)
    live = None
    if args.frame_prompts_stdin:
        live = StdinPrompts(sys.stdin, frame_hw)
        specs += live.initial
    check_specs(specs, frame_hw, num_frames)
    if not specs and (live is None or not live.live):
        raise DemoInputError('interactive_video needs prompts: --points / --boxes / --texts (frame '
                             '0), --prompts-file or --frame-prompts-stdin')
    return specs, live


def run(args: argparse.Namespace) -> Dict[str, Any]:
    check_flags(args)
    out_stem = Path(args.out_dir) / f'{Path(args.input.rstrip("/")).stem}_{args.task}'
    options = {} if args.score_thr is None else {'model.test_cfg.object_mask_thr': args.score_thr}
    if args.task in IMAGE_TASKS:
        image = read_image(args.input, args.max_input_pixels)
        specs = parse_cli_prompts(args.points, args.boxes, args.texts)
        check_specs(specs, image.shape[:2])
        if args.task == 'interactive_image' and not specs:
            raise DemoInputError('interactive_image needs prompts: --points, --boxes and/or --texts')
    else:
        try:  # the size and length only (frame 0 decoded); the predictor opens its own reader
            source = open_video(args.input, max_pixels=args.max_input_pixels)
            frame_hw, num_frames = source.frame_size, source.num_frames
            source.close()
        except (FileNotFoundError, ValueError) as e:
            raise DemoInputError(f'cannot read video input {args.input}: {e}') from None
        specs, live = video_prompts(args, frame_hw, num_frames)
    if args.checkpoint is None:
        print(UNTRAINED_BANNER, file=sys.stderr)
    build = dict(config=args.config, checkpoint=args.checkpoint, device=args.device,
                 image_size=args.image_size, cfg_options=options,
                 max_input_pixels=args.max_input_pixels, precision=args.precision)
    if args.task == 'interactive_image':
        summary = run_interactive_image(SegPredictor.from_config(**build), image, specs, out_stem)
    elif args.task == 'panoptic':
        summary = run_panoptic(SegPredictor.from_config(**build), image, out_stem)
    else:
        summary = run_video(FastSAM2VideoPredictor.from_config(**build), args.input, args.task,
                            specs, out_stem, live)
    print(f'{args.task}: wrote {out_stem}.* to {args.out_dir}')
    return summary


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Parse ``argv`` and run the task; returns the summary written to the json."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (DemoInputError, FileNotFoundError) as e:
        raise SystemExit(f'demo.py: error: {e}') from None


if __name__ == '__main__':
    main()
