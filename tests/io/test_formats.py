"""The one list of output formats, shared by the writer and `sat segment --formats`."""
from __future__ import annotations

import pytest

from sat.errors import InputError
from sat.io.formats import FORMATS, check_formats


def test_formats_are_normalised_and_deduplicated():
    assert check_formats([" NIfTI", "dicom_seg", "nifti"]) == ("nifti", "dicom_seg")
    assert check_formats(FORMATS) == FORMATS


@pytest.mark.parametrize("given", [["png"], [], ["", " "], ["nifti", "jpeg"]])
def test_unknown_or_no_format_names_the_choices(given):
    with pytest.raises(InputError, match="choose from nifti,multilabel,dicom_seg"):
        check_formats(given)


def test_the_command_line_uses_the_same_list():
    from sat.infer import cli

    assert cli.FORMATS is FORMATS
    with pytest.raises(InputError, match="unknown --formats 'nifti,png'"):
        cli._formats("nifti,png")
