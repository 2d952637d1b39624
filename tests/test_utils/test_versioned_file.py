import pytest

from seg.utils.versioned_file import check_versioned


def test_accepts_the_right_header_and_names_the_tool_otherwise():
    data = {'format': 'f', 'version': 2, 'x': 1}
    assert check_versioned(data, 'a.json', 'f', 2, 'thing file', 'make.py') is data
    with pytest.raises(ValueError, match=r'a.json is not a thing file \(format key\)'):
        check_versioned({'format': 'g', 'version': 2}, 'a.json', 'f', 2, 'thing file', 'make.py')
    with pytest.raises(ValueError, match='version 1 is not the supported version 2.*make.py'):
        check_versioned({'format': 'f', 'version': 1}, 'a.json', 'f', 2, 'thing file', 'make.py')
    with pytest.raises(ValueError, match='format key'):
        check_versioned([1, 2], 'a.json', 'f', 2, 'thing file', 'make.py')
