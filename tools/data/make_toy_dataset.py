"""Write the FastSAM2 toy dataset (COCO-panoptic/instances, YouTube-VIS 2019, DAVIS 2017 formats).

    python tools/data/make_toy_dataset.py data/toy --seed 0

The implementation is importable as ``seg.datasets.toy_dataset.make_toy_dataset``.
"""
import argparse
import time

from seg.datasets.toy_dataset import make_toy_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='folder to write coco/, youtube_vis_2019/ and davis2017/ into')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-images', type=int, nargs=2, default=(8, 4), metavar=('TRAIN', 'VAL'))
    parser.add_argument('--num-videos', type=int, default=4)
    parser.add_argument('--num-sequences', type=int, default=3)
    parser.add_argument('--parts', nargs='+', choices=('coco', 'ytvis', 'davis'), default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    toy = make_toy_dataset(args.out_dir, seed=args.seed, num_images=tuple(args.num_images),
                           num_videos=args.num_videos, num_sequences=args.num_sequences,
                           parts=args.parts)
    print(f'wrote the toy dataset to {toy.root} in {time.perf_counter() - start:.1f}s')


if __name__ == '__main__':
    main()
