"""DAVIS 2016 / 2017 read from the released folder layout (or from an index file made from it).

Layout under ``data_root``::

    JPEGImages/<resolution>/<sequence>/00000.jpg ...
    Annotations/<resolution>/<sequence>/00000.png ...   2016: binary 0/255; 2017: palette ids,
                                                         1..K objects, 255 void
    ImageSets/<year>/<split>.txt                         one sequence name per line
"""
import os
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.fileio import load

from seg.datasets.base_video_dataset import BaseVideoSegDataset
from seg.registry import DATASETS
from seg.utils.versioned_file import check_versioned

MASK_FORMATS = {'2016': 'binary', '2017': 'palette'}
INDEX_FORMAT, INDEX_VERSION = 'fastsam2-davis-index', 1


def scan_davis_sequence(root: str, resolution: str, sequence: str) -> List[dict]:
    """Frames of one DAVIS sequence: ``[{'img_path', 'seg_map_path' (None if absent)}, ...]``."""
    img_dir = osp.join(root, 'JPEGImages', resolution, sequence)
    ann_dir = osp.join(root, 'Annotations', resolution, sequence)
    if not osp.isdir(img_dir):
        raise FileNotFoundError(f'DAVIS sequence folder not found: {img_dir}')
    frames = []
    for name in sorted(f for f in os.listdir(img_dir) if f.lower().endswith('.jpg')):
        png = osp.join(ann_dir, osp.splitext(name)[0] + '.png')
        frames.append(dict(img_path=osp.join(img_dir, name),
                           seg_map_path=png if osp.isfile(png) else None))
    return frames


def davis_sequences(root: str, year: str, split: Optional[str], resolution: str) -> List[str]:
    """Sequence names of ``ImageSets/<year>/<split>.txt``, or every folder when ``split`` is None."""
    if split is None:
        img_root = osp.join(root, 'JPEGImages', resolution)
        if not osp.isdir(img_root):
            raise FileNotFoundError(f'DAVIS image folder not found: {img_root}')
        return sorted(d for d in os.listdir(img_root) if osp.isdir(osp.join(img_root, d)))
    list_file = osp.join(root, 'ImageSets', year, f'{split}.txt')
    if not osp.isfile(list_file):
        raise FileNotFoundError(f'DAVIS split file not found: {list_file} (split=None uses every '
                                'sequence folder)')
    with open(list_file) as f:
        return [line.strip() for line in f if line.strip()]


@DATASETS.register_module()
class DAVISDataset(BaseVideoSegDataset):
    """DAVIS 2016 (one object per sequence) or 2017 (objects 1..K, void 255), unified video format.

    Args:
        year: ``'2016'`` (binary masks -> object id 1) or ``'2017'`` (palette ids).
        split: the ``ImageSets/<year>/<split>.txt`` list; None uses every sequence folder.
        sequences: an explicit list of sequence names (a split chosen in the config, for roots
            without ``ImageSets``, e.g. a train / held-out division); needs ``split=None``. With
            ``ann_file``, the index's videos of these names, in this order.
        resolution: the ``480p`` / ``Full-Resolution`` sub-folder.
        ann_file: optional index file written by ``tools/dataset_converters/davis_to_index.py``
            (json/pkl holding this dataset's ``data_list``); when given, the folders are not
            scanned.
        Other args: ``BaseVideoSegDataset``. In training (not ``test_mode``) every frame needs its
        annotation PNG; in ``test_mode`` only the first frame does (the VOS reference).

    All objects have label 0 (``'object'``): DAVIS has no categories.
    """

    METAINFO = dict(classes=('object', ))

    def __init__(self, *args, year: str = '2017', split: Optional[str] = 'train',
                 sequences: Optional[Sequence[str]] = None, resolution: str = '480p',
                 **kwargs) -> None:
        if str(year) not in MASK_FORMATS:
            raise ValueError(f"DAVISDataset: year must be '2016' or '2017', got {year!r}")
        if sequences is not None:
            if split is not None:
                raise ValueError(f'DAVISDataset: give either split ({split!r}) or sequences, not '
                                 'both (set split=None to use the sequence list)')
            if isinstance(sequences, str) or not sequences:
                raise ValueError(f'DAVISDataset: sequences must be a non-empty list of sequence '
                                 f'names, got {sequences!r}')
            sequences = [str(s) for s in sequences]
            if len(set(sequences)) != len(sequences):
                raise ValueError(f'DAVISDataset: sequences lists a name twice: {sequences}')
        self.year, self.split, self.resolution = str(year), split, resolution
        self.sequences = sequences
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        if self.ann_file:
            if not osp.isfile(self.ann_file):
                raise FileNotFoundError(f'DAVIS index file not found: {self.ann_file}')
            index = check_versioned(load(self.ann_file), self.ann_file, INDEX_FORMAT, INDEX_VERSION,
                                    'DAVIS index file', 'davis_to_index.py')
            for video in index['data_list']:
                for frame in video['images']:
                    # the index stores paths relative to the DAVIS root, so it can move with it
                    frame['img_path'] = osp.join(self.data_root, frame['img_path'])
                    if frame['seg_map_path'] is not None:
                        frame['seg_map_path'] = osp.join(self.data_root, frame['seg_map_path'])
            videos = index['data_list']
            if self.sequences is not None:
                by_name = {v['video_name']: v for v in videos}
                missing = [s for s in self.sequences if s not in by_name]
                if missing:
                    raise KeyError(f'DAVIS index file {self.ann_file} has no sequence {missing}')
                videos = [by_name[s] for s in self.sequences]
            return self.check_videos(videos, self.ann_file)
        return self.check_videos(self.scan_folders(), self.data_root)

    def scan_folders(self) -> List[dict]:
        """Scan the DAVIS folders into the unified video list (bad data per ``on_bad_data``)."""
        root, fmt = self.data_root, MASK_FORMATS[self.year]
        videos, img_id = [], 0
        names = (self.sequences if self.sequences is not None
                 else davis_sequences(root, self.year, self.split, self.resolution))
        for video_id, name in enumerate(names):
            try:
                frames = scan_davis_sequence(root, self.resolution, name)
            except FileNotFoundError as e:
                self.bad_data(str(e), FileNotFoundError)
                continue
            if not frames:
                self.bad_data(f'DAVIS sequence has no frames: '
                              f'{osp.join(root, "JPEGImages", self.resolution, name)}')
                continue
            needed = frames[:1] if self.test_mode else frames
            missing = [f['img_path'] for f in needed if f['seg_map_path'] is None]
            if missing:
                png = osp.join(root, 'Annotations', self.resolution, name,
                               osp.splitext(osp.basename(missing[0]))[0] + '.png')
                self.bad_data(f'DAVIS annotation not found: {png} ({len(missing)} frame(s) of '
                              f'{name!r} without annotation)', FileNotFoundError)
                continue
            for frame in frames:
                frame.update(img_id=img_id, mask_format=fmt)
                img_id += 1
            videos.append(dict(video_id=video_id, video_name=name, images=frames))
        return videos

