"""The header check shared by every file the dataset converters write (``format`` + ``version``)."""


def check_versioned(data: object, path: str, fmt: str, version: int, description: str,
                    tool: str) -> dict:
    """Return ``data`` if it is a dict with ``format == fmt`` and ``version == version``; otherwise
    raise a ``ValueError`` naming the file and the converter that (re)builds it."""
    if not isinstance(data, dict) or data.get('format') != fmt:
        raise ValueError(f'{path} is not a {description} (format key)')
    if data.get('version') != version:
        raise ValueError(f"{path}: {description} version {data.get('version')} is not the supported "
                         f'version {version}; regenerate it with tools/dataset_converters/{tool}')
    return data
