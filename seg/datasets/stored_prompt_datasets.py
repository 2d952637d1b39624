"""Datasets that read the offline converters' outputs: COCO prompts, YouTube-VIS interactive clips.

Both attach the stored prompts to the frames they belong to as ``stored_prompts`` (a list of rows,
empty where a frame has none); ``LoadStoredPrompts``, placed after the geometric transforms, turns
them into the project's prompt ``InstanceData`` in the frame of the packed image. A row::

    {'ann_id': int,            # the object: COCO panoptic segment id / YouTube-VIS annotation id
     'label': int,             # the dataset's contiguous label of the object's category
     'isthing': bool,
     'points': float32 [P, 2], 'point_labels': int64 [P],  # pixels of the ORIGINAL image
     'box': float32 [4] | None,                           # xyxy, original image
     'text': str}
"""
import os.path as osp
from typing import Dict, List, Tuple

from seg.datasets.coco_panoptic import CocoPanopticSegDataset
from seg.datasets.converters import load_interactive_prompts, load_ytvis_interactive_meta
from seg.datasets.youtube_vis import YouTubeVIS2019Dataset
from seg.registry import DATASETS
from seg.utils.validation import check_finite, check_int, check_labels, require_keys, require_list

ROW_KEYS = ('ann_id', 'points', 'point_labels', 'box')


def _row(entry: dict, label: int, isthing: bool, name: str) -> dict:
    """A stored prompt (``name`` says where it is) as a row, its arrays checked: finite points
    ``[P, 2]`` with one 1 / 0 label each, a finite ``[4]`` box or None."""
    require_keys(entry, ROW_KEYS, name)
    points = check_finite(entry['points'], f'{name} "points"')
    if points.size == 0:
        points = points.reshape(0, 2)
    labels = check_labels(entry['point_labels'], f'{name} "point_labels"', (1, 0)).reshape(-1)
    if points.ndim != 2 or points.shape[1] != 2 or len(labels) != len(points):
        raise ValueError(f'{name}: "points" must be [P, 2] with one "point_labels" entry each, '
                         f'got shapes {points.shape} and {labels.shape}')
    box = None
    if entry['box'] is not None:
        box = check_finite(entry['box'], f'{name} "box"')
        if box.shape != (4, ):
            raise ValueError(f'{name}: "box" must be [x1, y1, x2, y2], got shape {box.shape}')
    return dict(ann_id=check_int(entry['ann_id'], f'{name} "ann_id"'), label=int(label),
                isthing=bool(isthing), points=points, point_labels=labels, box=box,
                text=entry.get('text') or '')


@DATASETS.register_module()
class CocoPanopticPromptFileDataset(CocoPanopticSegDataset):
    """COCO panoptic with the prompts of ``fastsam2_interactive.json`` (written by
    ``tools/dataset_converters/coco_to_interactive_prompts.py`` from the SAME panoptic json, so the
    rows' ``ann_id`` are its segment ids).

    Args:
        prompt_file: the prompt json (format checked by ``load_interactive_prompts``).
        Other args: ``CocoPanopticSegDataset``. Images without a stored prompt get none.
    """

    def __init__(self, *args, prompt_file: str, **kwargs) -> None:
        self.prompt_file = prompt_file
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        if not osp.isfile(self.prompt_file):
            raise FileNotFoundError(f'interactive prompt file not found: {self.prompt_file} (write it '
                                    'with tools/dataset_converters/coco_to_interactive_prompts.py)')
        stored = require_keys(load_interactive_prompts(self.prompt_file), ('source', 'prompts'),
                              self.prompt_file)
        require_keys(stored['source'], ('kind', ), f'{self.prompt_file}: "source"')
        if stored['source']['kind'] != 'panoptic':
            raise ValueError(f'{self.prompt_file} was made from a COCO {stored["source"]["kind"]} '
                             'json: its ann_ids are not panoptic segment ids; convert the panoptic '
                             'json (--panoptic-dir)')
        per_image: Dict[int, List[Tuple[str, dict]]] = {}
        for i, entry in enumerate(require_list(stored, 'prompts', self.prompt_file)):
            name = f'{self.prompt_file}: prompt {i}'
            require_keys(entry, ('image_id', 'file_name', *ROW_KEYS), name)
            check_int(entry['ann_id'], f'{name} "ann_id"')  # a '3' would match no segment
            per_image.setdefault(entry['image_id'], []).append((name, entry))
        matched = 0
        for info in data_list:
            entries = per_image.get(info['img_id'], [])
            segments = {s['id']: s for s in info['segments_info']}
            rows = []
            for name, e in entries:
                if osp.basename(info['img_path']) != e['file_name']:
                    raise ValueError(f"{self.prompt_file}: image id {e['image_id']} is "
                                     f"{e['file_name']!r} there but {info['img_path']!r} in "
                                     f'{self.ann_file}: the files come from different jsons')
                seg = segments.get(e['ann_id'])
                if seg is not None:  # segments mmdet dropped (empty boxes) have no target
                    rows.append(_row(e, seg['category'], seg['is_thing'], name))
            info['stored_prompts'] = rows
            matched += bool(rows)
        if not matched:
            raise ValueError(f'{self.prompt_file}: no prompt belongs to an image of {self.ann_file}')
        return data_list


@DATASETS.register_module()
class YouTubeVISClipFileDataset(YouTubeVIS2019Dataset):
    """YouTube-VIS 2019 as the clips of ``ytvis_interactive_meta.pkl`` (written by
    ``tools/dataset_converters/ytvis_to_interactive_clips.py`` from the same json): one sample per
    stored clip (its frames only), with the stored key-frame prompts on its key frames.

    Use ``SampleVideoClip(clip_length=None)`` (the whole stored clip).

    Args:
        clip_file: the clip pickle (format checked by ``load_ytvis_interactive_meta``).
        Other args: ``YouTubeVIS2019Dataset``.
    """

    def __init__(self, *args, clip_file: str, **kwargs) -> None:
        self.clip_file = clip_file
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        videos = {v['video_id']: v for v in super().load_data_list()}
        if not osp.isfile(self.clip_file):
            raise FileNotFoundError(f'YouTube-VIS clip file not found: {self.clip_file} (write it '
                                    'with tools/dataset_converters/ytvis_to_interactive_clips.py)')
        meta = load_ytvis_interactive_meta(self.clip_file)
        classes = list(self.metainfo['classes'])
        cat2label = {c['id']: classes.index(c['name']) for c in meta['categories']
                     if c['name'] in classes}
        clips = []
        for clip in meta['clips']:
            video = videos.get(clip['video_id'])
            if video is None:
                self.bad_data(f"{self.clip_file}: clip of video {clip['video_name']!r} (id "
                              f"{clip['video_id']}) is not in {self.ann_file}")
                continue
            frames = []
            for pos, (t, file_name) in enumerate(zip(clip['frame_indices'], clip['file_names'])):
                if t >= len(video['images']) or not video['images'][t]['img_path'].endswith(file_name):
                    raise ValueError(f'{self.clip_file}: frame {t} of video {clip["video_name"]!r} is '
                                     f'{file_name!r}, which {self.ann_file} does not have there')
                frame = dict(video['images'][t])
                where = f'{self.clip_file}: clip of video {clip["video_name"]!r} key frame {pos}'
                rows = clip['prompts'].get(pos, [])
                unknown = [r.get('category_id') for r in rows if r.get('category_id') not in cat2label]
                if unknown:
                    raise ValueError(f'{where}: category ids {unknown} are not categories of '
                                     f'metainfo["classes"]')
                frame['stored_prompts'] = [_row(r, cat2label[r['category_id']], True, where)
                                           for r in rows]
                frames.append(frame)
            clips.append(dict(video_id=video['video_id'], video_name=video['video_name'],
                              images=frames))
        return self.check_videos(clips, self.clip_file)
