"""Wildmat matching (nntpd/wildmat.py) against RFC 3977 section 4.

Rule used throughout (RFC 3977 4.2): the patterns of a wildmat are tried
and the LAST one that matches decides; a "!" pattern that matches means
"no match"; a string that matches no pattern does not match.
"""

from __future__ import annotations

import pytest

from nntpd.wildmat import WildmatError, compile_wildmat, wildmat_match

# RFC 3977 4.4 examples: (wildmat, strings that match, strings that do not).
RFC_EXAMPLES = [
    # "abc": the one string "abc"
    ("abc", ["abc"], ["ab", "abcd", "ABC", "xabc", ""]),
    # "abc,def": the two strings "abc" and "def"
    ("abc,def", ["abc", "def"], ["abc,def", "abcdef", "ab"]),
    # "$@": the one-character string U+00A3 (UTF-8 C2 A3)
    ("\u00a3", ["\u00a3"], ["\u00a3\u00a3", "", "L"]),
    # "a*": any string that begins with "a"
    ("a*", ["a", "apple", "a.b.c"], ["", "ba", "Apple"]),
    # "a*b": begins with "a" and ends with "b"
    ("a*b", ["ab", "acb", "abb", "a.x.b"], ["abc", "b", "a"]),
    # "a*,*b": begins with "a" or ends with "b"
    ("a*,*b", ["abc", "ccb", "apple", "rhubarb", "b"], ["carrot", "ba", ""]),
    # "a*,!*b": begins with "a" and does not end with "b"
    ("a*,!*b", ["abc", "apple", "a"], ["ab", "anub", "ccb", "carrot"]),
    # "a*,!*b,c*": begins with "a" and does not end with "b", and any string
    # that begins with "c" no matter what it ends with
    ("a*,!*b,c*", ["acdc", "apple", "cat", "cab", "curb", "c"], ["anub", "ab", "dog", "b"]),
    # "a*,c*,!*b": begins with "a" or "c" and does not end with "b"
    ("a*,c*,!*b", ["can", "ark", "apple", "carrot"], ["cab", "appleb", "carrotb", "dog"]),
    # "?a*": "a" as its second character
    ("?a*", ["bat", "rake", "ba"], ["dead", "snake", "a", "ab"]),
    # "??a*": "a" as its third character
    ("??a*", ["dead", "prake", "xya"], ["psnake", "bat", "aa"]),
    # "*a?": "a" as its penultimate character
    ("*a?", ["dead", "sbat", "ab"], ["sbatt", "a", "ba"]),
    # "*a??": "a" as its antepenultimate character
    ("*a??", ["beard", "abc"], ["dead", "ab"]),
]


@pytest.mark.parametrize("wildmat,yes,no", RFC_EXAMPLES, ids=[w for w, _, _ in RFC_EXAMPLES])
def test_rfc3977_section_4_4_examples(wildmat, yes, no):
    for name in yes:
        assert wildmat_match(wildmat, name), (wildmat, name)
    for name in no:
        assert not wildmat_match(wildmat, name), (wildmat, name)


# -- 4.2 the last matching pattern wins --------------------------------------


def test_last_match_wins_a_star_not_star_b_star_c_star():
    # "a*,!*b,*c*" (derived from the 4.2 rule):
    #  aaa: a* matches, !*b and *c* do not -> last match is a* -> MATCH
    #  abc: a* matches, !*b does not ("abc" ends in c), *c* matches -> MATCH
    #  ccb: a* no, !*b matches (reject), then *c* matches later -> MATCH
    #  aab: a* matches, then !*b matches, *c* does not -> last is !*b -> NO
    #  bbb: only !*b matches -> NO
    w = "a*,!*b,*c*"
    assert wildmat_match(w, "aaa") is True
    assert wildmat_match(w, "abc") is True
    assert wildmat_match(w, "ccb") is True
    assert wildmat_match(w, "aab") is False
    assert wildmat_match(w, "bbb") is False


def test_order_matters_negation_before_positive():
    # "!*b,a*": the later a* overrides the earlier negation for "ab".
    assert wildmat_match("!*b,a*", "ab") is True
    # ...while "a*,!*b" rejects it.
    assert wildmat_match("a*,!*b", "ab") is False


def test_everything_but_a_hierarchy():
    w = "*,!local.*"
    assert wildmat_match(w, "comp.lang.python")
    assert not wildmat_match(w, "local.test")
    assert wildmat_match(w, "localtest")


def test_only_negated_patterns_never_match():
    # A string matching no pattern does not match; "!x" alone can only reject.
    assert not wildmat_match("!*b", "aaa")
    assert not wildmat_match("!*b", "aab")
    assert not wildmat_match("!a,!b", "c")


def test_negated_then_rescued_then_rejected_again():
    w = "comp.*,!comp.lang.*,comp.lang.python,!comp.lang.python.announce"
    assert wildmat_match(w, "comp.os.linux")
    assert not wildmat_match(w, "comp.lang.c")
    assert wildmat_match(w, "comp.lang.python")
    assert not wildmat_match(w, "comp.lang.python.announce")


def test_returns_plain_bools():
    assert wildmat_match("a*", "abc") is True
    assert wildmat_match("a*", "xbc") is False
    assert wildmat_match("!a*", "abc") is False


# -- 4.1 pattern characters -----------------------------------------------------


def test_star_matches_empty_and_dots():
    # "*" matches any sequence of zero or more characters, including ".".
    assert wildmat_match("*", "")
    assert wildmat_match("*", "comp.lang.c")
    assert wildmat_match("comp.*", "comp.")
    assert wildmat_match("comp*c", "comp.lang.c")


def test_patterns_are_anchored():
    assert not wildmat_match("lang", "comp.lang.c")
    assert wildmat_match("*lang*", "comp.lang.c")


def test_question_mark_is_exactly_one_character():
    assert wildmat_match("a?c", "abc")
    assert not wildmat_match("a?c", "ac")
    assert not wildmat_match("a?c", "abbc")


def test_matching_is_case_sensitive():
    assert not wildmat_match("local.*", "LOCAL.test")
    assert not wildmat_match("Local.Test", "local.test")


def test_dot_is_literal_not_regex_any():
    assert not wildmat_match("a.c", "abc")
    assert wildmat_match("a.c", "a.c")


@pytest.mark.parametrize("char", list("+-_()$^|{}"))
def test_regex_metacharacters_are_literal(char):
    assert wildmat_match(f"x{char}y", f"x{char}y")
    assert not wildmat_match(f"x{char}y", "xy")


def test_star_matches_newline_and_any_character():
    assert wildmat_match("a*b", "a\nb")


def test_empty_wildmat_matches_only_empty_string():
    assert wildmat_match("", "")
    assert not wildmat_match("", "a")


def test_empty_element_in_list_matches_empty_string_only():
    assert wildmat_match("a,", "")
    assert wildmat_match("a,", "a")
    assert not wildmat_match("a,", "b")


# -- 4.1 UTF-8 -----------------------------------------------------------------


def test_question_mark_matches_one_utf8_character_not_one_octet():
    # RFC 3977 4.1: "?" matches exactly one UTF-8 character (U+00A3 is 2 octets).
    assert wildmat_match("?", "\u00a3")
    assert not wildmat_match("??", "\u00a3")
    assert wildmat_match("?", "\U0001f600")  # 4 octets, one character


def test_utf8_group_names():
    assert wildmat_match("de.*", "de.soc.k\u00fcche")
    assert wildmat_match("*.k\u00fcche", "de.soc.k\u00fcche")
    assert wildmat_match("de.soc.k?che", "de.soc.k\u00fcche")
    assert not wildmat_match("de.soc.kuche", "de.soc.k\u00fcche")


def test_utf8_negation():
    assert not wildmat_match("*,!*\u00e9*", "caf\u00e9")
    assert wildmat_match("*,!*\u00e9*", "cafe")


# -- INN extensions: [...] classes and \ escapes ------------------------------


def test_character_class():
    assert wildmat_match("comp.[abc]*", "comp.bar")
    assert not wildmat_match("comp.[abc]*", "comp.dar")


def test_character_class_range():
    assert wildmat_match("[0-9a-z]", "7")
    assert wildmat_match("[0-9a-z]", "q")
    assert not wildmat_match("[0-9a-z]", "Q")


def test_negated_character_class():
    assert wildmat_match("[^abc]x", "dx")
    assert not wildmat_match("[^abc]x", "ax")


def test_class_matches_exactly_one_character():
    assert not wildmat_match("[ab]", "ab")
    assert not wildmat_match("[ab]", "")


def test_close_bracket_first_in_class_is_literal():
    # INN wildmat: "]" may be included in a set if it is the first character.
    assert wildmat_match("[]a]", "]")
    assert wildmat_match("[]a]", "a")
    assert not wildmat_match("[]a]", "b")


def test_negated_class_with_close_bracket_and_minus():
    # INN's documented example: "[^]-]" matches any character other than "]" or "-".
    assert wildmat_match("[^]-]", "a")
    assert not wildmat_match("[^]-]", "]")
    assert not wildmat_match("[^]-]", "-")


def test_comma_inside_class_does_not_split_the_list():
    assert wildmat_match("a[,;]b", "a,b")
    assert wildmat_match("a[,;]b", "a;b")
    assert not wildmat_match("a[,;]b", "a")


def test_comma_inside_class_after_leading_close_bracket():
    # "[],]x": a class of "]" and "," followed by "x" - one pattern, not two.
    assert wildmat_match("[],]x", ",x")
    assert wildmat_match("[],]x", "]x")
    assert not wildmat_match("[],]x", "x")


def test_class_in_negated_pattern():
    assert not wildmat_match("*,![0-9]*", "3com")
    assert wildmat_match("*,![0-9]*", "acme")


def test_backslash_escapes_star_and_question_mark():
    assert wildmat_match(r"a\*", "a*")
    assert not wildmat_match(r"a\*", "abc")
    assert wildmat_match(r"a\?", "a?")
    assert not wildmat_match(r"a\?", "ab")


def test_backslash_escapes_comma():
    assert wildmat_match(r"a\,b", "a,b")
    assert not wildmat_match(r"a\,b", "a")
    assert not wildmat_match(r"a\,b", "b")


def test_backslash_escapes_leading_bang():
    # "\!x" is a positive pattern for the literal string "!x".
    assert wildmat_match(r"\!x", "!x")
    assert not wildmat_match(r"\!x", "x")


def test_backslash_escapes_open_bracket():
    assert wildmat_match(r"\[a]", "[a]")
    assert not wildmat_match(r"\[a]", "a")


def test_double_backslash_is_a_literal_backslash():
    assert wildmat_match("a\\\\b", "a\\b")


def test_unbalanced_bracket_raises_wildmat_error():
    with pytest.raises(WildmatError):
        compile_wildmat("comp.[abc")


def test_wildmat_error_is_a_value_error():
    assert issubclass(WildmatError, ValueError)


def test_compile_wildmat_returns_reusable_predicate():
    match = compile_wildmat("a*,!*b")
    assert [match(s) for s in ("abc", "ab", "xyz")] == [True, False, False]
    assert compile_wildmat("a*,!*b") is match  # cached


def test_reversed_range_raises_wildmat_error():
    with pytest.raises(WildmatError):
        compile_wildmat("[z-a]")


def test_too_long_or_too_many_patterns_raise_wildmat_error():
    from nntpd.wildmat import MAX_PATTERNS, MAX_WILDMAT

    with pytest.raises(WildmatError):
        compile_wildmat("a" * (MAX_WILDMAT + 1))
    with pytest.raises(WildmatError):
        compile_wildmat(",".join(["a"] * (MAX_PATTERNS + 1)))
    compile_wildmat(",".join(["a"] * MAX_PATTERNS))


# -- no backtracking (issue 13: one XPAT froze the server) ----------------------


def test_many_stars_against_a_long_run_is_instant():
    import time

    started = time.perf_counter()
    for stars in range(1, 40):
        pattern = "*a" * stars + "*b"
        assert not wildmat_match(pattern, "a" * 200)
        assert wildmat_match(pattern, "a" * 200 + "b")
    assert time.perf_counter() - started < 1.0


def test_cost_grows_linearly_with_the_text():
    """O(len(text) x len(pattern)): ten times the text costs about ten times the time."""
    import time

    match = compile_wildmat("*a?a*[ab]a*a*a*a*a*a*a*a*c")

    def cost(n: int) -> float:
        text = "a" * n
        started = time.perf_counter()
        for _ in range(20):
            match(text)
        return time.perf_counter() - started

    small, large = min(cost(2_000) for _ in range(3)), min(cost(20_000) for _ in range(3))
    assert large < small * 40, (small, large)


# -- property test: the matcher against a simple reference -------------------


def _reference_tokens(pattern: str) -> list[tuple[str, object]] | None:
    """Tokens of one pattern, parsed independently of nntpd.wildmat; None if unbalanced."""
    tokens: list[tuple[str, object]] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            tokens.append(("star", None))
        elif ch == "?":
            tokens.append(("any", None))
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            tokens.append(("lit", pattern[i]))
        elif ch == "[":
            j = i + 1
            negate = pattern[j : j + 1] == "^"
            j += negate
            members: list[tuple[str, str]] = []
            first = True
            while j < len(pattern) and (pattern[j] != "]" or first):
                if j + 2 < len(pattern) and pattern[j + 1] == "-" and pattern[j + 2] != "]":
                    members.append((pattern[j], pattern[j + 2]))
                    j += 3
                else:
                    members.append((pattern[j], pattern[j]))
                    j += 1
                first = False
            if j >= len(pattern):
                return None
            tokens.append(("class", (negate, members)))
            i = j
        else:
            tokens.append(("lit", ch))
        i += 1
    return tokens


def _reference_match(tokens: list[tuple[str, object]], text: str) -> bool:
    """Dynamic programming over (token, position): plainly correct, quadratic."""
    n = len(text)
    reach = [False] * (n + 1)
    reach[0] = True
    for kind, value in tokens:
        nxt = [False] * (n + 1)
        for pos in range(n + 1):
            if not reach[pos]:
                continue
            if kind == "star":
                for later in range(pos, n + 1):
                    nxt[later] = True
                break
            if pos == n:
                continue
            ch = text[pos]
            if kind == "lit":
                ok = ch == value
            elif kind == "any":
                ok = True
            else:
                negate, members = value  # type: ignore[misc]
                ok = any(low <= ch <= high for low, high in members) != negate
            if ok:
                nxt[pos + 1] = True
        reach = nxt
    return reach[n]


def _random_wildmat(rng) -> str:  # type: ignore[no-untyped-def]
    pieces = ["a", "b", "c", "*", "*", "?", "[ab]", "[^a]", "[a-c]", "\\*", "\\a", ".", "-"]
    patterns = []
    for _ in range(rng.randint(1, 3)):
        body = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        patterns.append(("!" if rng.random() < 0.3 else "") + body)
    return ",".join(patterns)


def _reference_wildmat(wildmat: str, text: str) -> bool:
    verdict = False
    for part in wildmat.split(","):  # the generator never puts a comma inside a pattern
        negate = part.startswith("!")
        tokens = _reference_tokens(part[1:] if negate else part)
        assert tokens is not None
        if _reference_match(tokens, text):
            verdict = not negate
    return verdict


def test_matches_the_reference_on_random_patterns_and_texts():
    import random

    rng = random.Random(3977)
    for _ in range(4000):
        wildmat = _random_wildmat(rng)
        text = "".join(rng.choice("abc.-*") for _ in range(rng.randint(0, 12)))
        assert wildmat_match(wildmat, text) == _reference_wildmat(wildmat, text), (wildmat, text)
