"""The signed reference in enrollment URLs: it reads back to what it was built for, and nothing else does."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pippin.crypto.secrets import SecretBox
from pippin.dep.enrollment_reference import REFERENCE_CHARS, ProfileRevision, build_reference, read_reference

BOX = SecretBox(os.urandom(32))


def test_a_reference_reads_back_to_its_profile_and_revision_and_is_url_safe() -> None:
    target = ProfileRevision(profile_id=7, revision=3)
    reference = build_reference(BOX, target)
    assert len(reference) == REFERENCE_CHARS and reference.replace("-", "").replace("_", "").isalnum()
    assert read_reference(BOX, reference) == target
    assert build_reference(BOX, ProfileRevision(7, 4)) != reference


def test_a_reference_signed_with_another_master_key_is_refused() -> None:
    reference = build_reference(SecretBox(os.urandom(32)), ProfileRevision(profile_id=1, revision=1))
    assert read_reference(BOX, reference) is None


@pytest.mark.parametrize("position", range(REFERENCE_CHARS))
def test_changing_any_character_of_a_reference_makes_it_refused(position: int) -> None:
    reference = build_reference(BOX, ProfileRevision(profile_id=2, revision=9))
    swapped = "A" if reference[position] != "A" else "B"
    assert read_reference(BOX, reference[:position] + swapped + reference[position + 1 :]) is None


@pytest.mark.parametrize(
    "text", ["", "=" * REFERENCE_CHARS, "é" * REFERENCE_CHARS, "\x00" * REFERENCE_CHARS, "a" * 4096]
)
def test_malformed_references_are_refused(text: str) -> None:
    assert read_reference(BOX, text) is None


@given(st.text(max_size=80))
def test_no_text_makes_reading_raise(text: str) -> None:
    assert read_reference(BOX, text) is None
