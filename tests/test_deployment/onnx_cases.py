"""Reading exported ONNX graphs in the export tests."""
from typing import Dict, List, Union


def graph_dims(values) -> Dict[str, List[Union[str, int]]]:
    """Graph inputs or outputs -> ``{name: dims}``, a dynamic axis by its name, a fixed one by
    its size."""
    return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in values}


