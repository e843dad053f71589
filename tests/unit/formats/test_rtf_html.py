"""HTML carried in RTF: the example of [MS-OXRTFEX] section 3.1, and the rules around it."""

from __future__ import annotations

import pytest

from docworker.errors import HostileInput
from docworker.formats.rtf.html import encapsulated_html, encapsulation

#: [MS-OXRTFEX] 3.1: the RTF an encapsulating writer makes of an HTML page. Its long
#: lines are broken between control words and groups, where RTF ignores line breaks.
SPEC_RTF = rb"""{\rtf1\ANSI\ansicpg1251\fromhtml1 \deff0
{\fonttbl {\f0\fmodern Courier New;}{\f1\fswiss Arial;}{\f2\fswiss\fcharset0 Arial;}}
{\colortbl\red0\green0\blue0;\red0\green0\blue255;}
{\*\htmltag64}
\uc1\pard\plain\deftab360 \f0\fs24
{\*\htmltag <HTML><head>\par
<style>\par
<!--\par
 /* Style Definitions */\par
 p.MsoNormal, li.MsoNormal \{font-family:Arial;\}\par
-->\par
</style>\par
\tab <!-- This is a HTML comment.\par
There is a horizontal tab (%x09) character before the comment, \par
and some new lines inside the comment. -->\par
</head>\par
<body>\par
<p\par
class="MsoNormal">}
{\htmlrtf \f1 \htmlrtf0 Note the line break inside a P tag. {\*\htmltag <b>}
{\htmlrtf \b \htmlrtf0 This is a bold text{\*\htmltag </b>}} \htmlrtf\par\htmlrtf0}
\htmlrtf \par \htmlrtf0
{\*\htmltag </p>\par
<p class="MsoNormal">\par}
{\htmlrtf \f1 \htmlrtf0 This is a normal text with a character references:
{\*\htmltag &nbsp;}\htmlrtf \'a0\htmlrtf0  {\*\htmltag &lt;}\htmlrtf <\htmlrtf0  {\*\htmltag &uml;}
\htmlrtf {\f2\'a8}\htmlrtf0{\*\htmltag <br>\par}\htmlrtf\line\htmlrtf0
characters which have special meaning in RTF: \{\}\\{\*\htmltag <br>\par}
\htmlrtf\line\htmlrtf0\htmlrtf\par\htmlrtf0}
{\*\htmltag </p>\par
<ol>\par
<li class="MsoNormal">}{\htmlrtf {{\*\pn\pnlvlbody\pndec\pnstart1\pnindent360{\pntxta.}}
\li360\fi-360{\pntext 1.\tab}}\htmlrtf0 This is a list item}{\*\htmltag \par
</ol>\par
</body>\par
</HTML>\par}
\htmlrtf \par \htmlrtf0}
"""


def test_the_specification_example_gives_back_its_html() -> None:
    assert encapsulation(SPEC_RTF) == "html"
    html = encapsulated_html(SPEC_RTF)
    lines = html.split("\r\n")
    assert lines[:3] == ["<HTML><head>", "<style>", "<!--"]
    assert " p.MsoNormal, li.MsoNormal {font-family:Arial;}" in lines
    assert "\t<!-- This is a HTML comment." in lines
    # What only renders (fonts, bold, the list number, the RTF's own paragraph marks) is gone.
    paragraph = '<p\r\nclass="MsoNormal">Note the line break inside a P tag. '
    assert f"{paragraph}<b>This is a bold text</b> </p>" in html
    assert "This is a normal text with a character references:&nbsp; &lt; &uml;<br>" in lines
    assert "characters which have special meaning in RTF: {}\\<br>" in lines
    assert '<li class="MsoNormal">This is a list item' in lines
    assert lines[-2:] == ["</HTML>", ""]
    for rendering in ("\xa0", "\xa8", "1.", "Courier", "blue"):
        assert rendering not in html


def test_text_outside_tags_is_in_its_fonts_code_page_tags_in_the_documents() -> None:
    rtf = (
        rb"{\rtf1\ansi\ansicpg1252\fromhtml1 \deff0{\fonttbl{\f0\fswiss Arial;}"
        rb"{\f1\fswiss\fcharset204 Arial Cyr;}}"
        rb"{\*\htmltag <p title='caf\'e9'>}\f1 \'cf\'f0\'e8\'e2\'e5\'f2"
        rb"{\*\htmltag </p>}\f0 caf\'e9 \u8364?\u-10179?\u-8704?}"
    )
    assert encapsulated_html(rtf) == "<p title='café'>Привет</p>café €😀"


def test_only_the_header_says_what_is_carried() -> None:
    assert encapsulation(rb"{\rtf1\ansi\fromtext \deff0{\fonttbl}text}") == "text"
    assert encapsulation(rb"{\rtf1\ansi\deff0{\fonttbl}\fromhtml1 text}") is None
    assert encapsulation(rb"{\rtf1\ansi\fromhtml0 text}") is None
    assert encapsulation(b"plain text, no RTF at all") is None
    assert encapsulation(b"") is None


def test_mhtml_tags_and_other_starred_groups_are_skipped() -> None:
    rtf = (
        rb"{\rtf1\ansi\fromhtml1 {\*\generator Writer;}"
        rb"{\*\mhtmltag84 <img src=3D'cid:1'>}{\*\htmltag84 <img src='a.png'>}"
        rb"{\pict\pngblip 89504e47}Caption}"
    )
    assert encapsulated_html(rtf) == "<img src='a.png'>Caption"


def test_groups_nested_past_any_writer_are_hostile() -> None:
    with pytest.raises(HostileInput):
        encapsulated_html(b"{\\rtf1\\fromhtml1 " + b"{" * 5000 + b"x" + b"}" * 5000 + b"}")
