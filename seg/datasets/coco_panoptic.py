"""mmdet's ``CocoPanopticDataset`` with clear errors for unusable annotation files."""
from typing import List

from mmdet.datasets import CocoPanopticDataset

from seg.datasets.annotation_checks import check_files_exist, load_coco_json
from seg.registry import DATASETS


@DATASETS.register_module()
class CocoPanopticSegDataset(CocoPanopticDataset):
    """``CocoPanopticDataset`` (same args, same data infos) that names the problem in bad data.

    - a segment whose category is not in ``metainfo['classes']`` (e.g. a custom json loaded with
      the default 133 COCO classes) raises a ``ValueError`` naming the json, the image and the
      category, where mmdet raises a bare ``KeyError``;
    - a training json (not ``test_mode``) without any segment raises a ``ValueError`` naming it;
    - the json is checked first (``annotation_checks.load_coco_json``: strict JSON, the keys mmdet
      reads, ids that resolve, finite boxes), and every image and panoptic PNG it names must exist
      (local paths), so a bad file fails when the dataset is built, naming the file / record /
      key, not in a dataloader worker.

    Load its samples with ``LoadCocoPanopticAnnotations`` (no ``panopticapi`` needed).
    """

    def load_data_list(self) -> List[dict]:
        if '://' not in str(self.ann_file):  # remote files: read by mmdet's file backend only
            load_coco_json(self.ann_file, panoptic=True, image_size=True,
                           object_keys=('bbox', 'area'), category_keys=('isthing', ))
        data_list = super().load_data_list()
        for key in ('img_path', 'seg_map_path'):
            check_files_exist((d.get(key) for d in data_list), self.ann_file)
        if not self.test_mode and not any(d['segments_info'] for d in data_list):
            raise ValueError(f'{self.ann_file}: the annotation list is empty (no segment in any of '
                             f'{len(data_list)} images)')
        return data_list

    def parse_data_info(self, raw_data_info: dict) -> dict:
        img = raw_data_info['raw_img_info']
        for ann in raw_data_info['raw_ann_info']:
            if ann['category_id'] not in self.cat2label:
                raise ValueError(
                    f"{self.ann_file}: image {img.get('file_name')} has a segment of category id "
                    f"{ann['category_id']}, which is not among metainfo['classes'] "
                    f"{list(self.metainfo['classes'])[:5]}...; pass metainfo=dict(classes=..., "
                    'thing_classes=..., stuff_classes=...) matching the json')
        return super().parse_data_info(raw_data_info)
