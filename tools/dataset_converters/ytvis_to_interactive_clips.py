"""YouTube-VIS 2019 json -> ytvis_interactive_meta.pkl (clips, key frames, key-frame prompts).

    python tools/dataset_converters/ytvis_to_interactive_clips.py \
        data/youtube_vis_2019/train.json data/annotations/ytvis_interactive_meta.pkl
"""
import argparse
from typing import List, Optional

from seg.datasets.converters import ytvis_to_interactive_clips
from seg.utils.validation import check_out_path, cli_input_errors


def main(argv: Optional[List[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('ann_file', help='YouTube-VIS 2019 json (train.json)')
    parser.add_argument('out_file')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--clip-length', type=int, nargs=2, default=(8, 16), metavar=('MIN', 'MAX'))
    parser.add_argument('--stride', type=int, nargs=2, default=(1, 1), metavar=('MIN', 'MAX'))
    parser.add_argument('--extra-key-frames', type=int, default=2,
                        help='evenly spaced key frames added to first appearances')
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f'--seed must be >= 0, got {args.seed}')
    if args.extra_key_frames < 0:
        parser.error(f'--extra-key-frames must be >= 0, got {args.extra_key_frames}')
    check_out_path(args.out_file, 'out_file')
    summary = ytvis_to_interactive_clips(args.ann_file, args.out_file, seed=args.seed,
                                         clip_length=tuple(args.clip_length),
                                         stride=tuple(args.stride),
                                         num_extra_key_frames=args.extra_key_frames)
    print(f"\nwrote {summary['clips']} clips of {summary['videos']} videos to {args.out_file} "
          f"({summary['videos_per_s']:.1f} videos/s)")
    return summary


if __name__ == '__main__':
    with cli_input_errors('ytvis_to_interactive_clips.py'):
        main()
