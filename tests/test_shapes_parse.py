"""Shape strings: what users type after --input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_nn.fmt import format_shape
from tui_nn.shapes.parse import (InputSpec, ShapeParseError, add_batch, normalize_dtype,
                                 parse_inputs, parse_shape)

dims = st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=6).map(tuple)
separators = st.sampled_from(["x", "X", "×", "*", " x ", " × "])


@given(dims, separators)
def test_any_separator_round_trips(shape, sep):
    assert parse_shape(sep.join(map(str, shape))) == shape
    assert parse_shape(format_shape(shape)) == shape


@given(st.lists(dims, min_size=1, max_size=4), st.sampled_from([",", ";", ", "]))
def test_several_inputs_in_one_string(shapes, sep):
    text = sep.join(format_shape(s, sep="x") for s in shapes)
    assert [spec.shape for spec in parse_inputs(text)] == shapes


@given(st.lists(dims, min_size=1, max_size=4))
def test_repeated_option_equals_one_comma_list(shapes):
    texts = [format_shape(s) for s in shapes]
    assert parse_inputs(texts) == parse_inputs(",".join(texts))


@given(dims, st.integers(min_value=1, max_value=6))
def test_add_batch_prepends_one_only_for_a_single_sample(shape, rank):
    batched = add_batch(shape, rank)
    if len(shape) == rank:
        assert batched == (1, *shape)
    else:
        assert batched == shape


@given(st.text(alphabet="0123456789x-.,; abc", max_size=12))
def test_garbage_never_crashes_with_anything_but_shape_errors(text):
    try:
        specs = parse_inputs(text)
    except ShapeParseError as exc:
        assert str(exc)  # always a message
    else:
        assert specs and all(all(d >= 1 for d in s.shape) for s in specs)


def test_examples_from_the_issue():
    assert parse_shape("1x28x28") == (1, 28, 28)
    assert parse_shape("64x1x28x28") == (64, 1, 28, 28)
    assert parse_shape("1×28×28") == (1, 28, 28)
    assert parse_inputs(["1x5:int64"]) == [InputSpec((1, 5), "int64")]
    assert parse_inputs("1x5:long, 1x5") == [InputSpec((1, 5), "int64"), InputSpec((1, 5))]


@pytest.mark.parametrize("text", ["", "1x", "x28", "1x-1", "1x0x3", "2.5", "1xx2", "axb"])
def test_bad_shapes_name_the_format(text):
    with pytest.raises(ShapeParseError, match="1x28x28|≥ 1"):
        parse_shape(text)


def test_unknown_dtype_lists_the_choices():
    with pytest.raises(ShapeParseError, match="int64"):
        normalize_dtype("int65")
    assert normalize_dtype("torch.long") == "int64"
    assert normalize_dtype("BF16") == "bfloat16"


def test_empty_input_in_a_list_is_an_error():
    with pytest.raises(ShapeParseError, match="separate inputs"):
        parse_inputs("1x5,,1x5")


def test_unknown_rank_batches_a_lone_feature_vector():
    assert add_batch((8,), None) == (1, 8)
    assert add_batch((4, 8), None) == (4, 8)
