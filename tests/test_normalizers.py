import pytest

from onsei.errors import OptionError
from onsei.metrics import error_counts
from onsei.text.normalizers import get_normalizer, join_spelled_letters


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("none", "  Rub  out\tGMEF39. ", "Rub out GMEF39."),
        ("plain", "Don't stop, it's 'fine'!", "don't stop it's fine"),
        ("plain", "RUBOUT G-M", "rubout g m"),
        ("whisper", "Rub out GMEF39.", "rub out gmef three nine"),
        ("whisper", "SEVEN ONE FIVE FOUR", "seven one five four"),
        ("whisper", "7154", "seven one five four"),
        ("whisper", "Mr. Smith", "mister smith"),
        ("spelled", "J P E G FOUR", "jpeg four"),
        ("spelled", "JPEG 4", "jpeg four"),
        ("spelled", "B-A-O-Z-5-3", "baoz five three"),
        ("spelled", "W O O D", "wood"),
        ("spelled", "I am a cat", "i am a cat"),
    ],
)
def test_normalizers(name, text, expected):
    assert get_normalizer(name)(text) == expected


def test_join_spelled_letters_leaves_words_alone():
    assert join_spelled_letters("ENTER G M E F THREE") == "ENTER GMEF THREE"
    assert join_spelled_letters("a state-of-the-art model") == "a state of the art model"


def test_spelled_normalizer_scores_an4_style_spelling_as_correct():
    normalize = get_normalizer("spelled")
    references = ["RUBOUT G M E F THREE NINE", "J P E G FOUR"]
    hypotheses = ["Rubout GMEF39.", "JPEG 4"]
    plain = error_counts(
        [get_normalizer("plain")(r) for r in references],
        [get_normalizer("plain")(h) for h in hypotheses],
    )
    spelled = error_counts([normalize(r) for r in references], [normalize(h) for h in hypotheses])
    assert plain.errors > 0
    assert spelled.errors == 0


def test_unknown_normalizer_is_an_option_error():
    with pytest.raises(OptionError, match="normalizer: expected one of"):
        get_normalizer("fancy")
