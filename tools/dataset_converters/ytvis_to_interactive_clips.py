"""YouTube-VIS 2019 json -> ytvis_interactive_meta.pkl (clips, key frames, key-frame prompts).

    python tools/dataset_converters/ytvis_to_interactive_clips.py \
        data/youtube_vis_2019/train.json data/annotations/ytvis_interactive_meta.pkl
"""
import argparse

from seg.datasets.converters import ytvis_to_interactive_clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('ann_file', help='YouTube-VIS 2019 json (train.json)')
    parser.add_argument('out_file')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--clip-length', type=int, nargs=2, default=(8, 16), metavar=('MIN', 'MAX'))
    parser.add_argument('--stride', type=int, nargs=2, default=(1, 1), metavar=('MIN', 'MAX'))
    parser.add_argument('--extra-key-frames', type=int, default=2,
                        help='evenly spaced key frames added to first appearances')
    args = parser.parse_args()
    summary = ytvis_to_interactive_clips(args.ann_file, args.out_file, seed=args.seed,
                                         clip_length=tuple(args.clip_length),
                                         stride=tuple(args.stride),
                                         num_extra_key_frames=args.extra_key_frames)
    print(f"\nwrote {summary['clips']} clips of {summary['videos']} videos to {args.out_file} "
          f"({summary['videos_per_s']:.1f} videos/s)")


if __name__ == '__main__':
    main()
