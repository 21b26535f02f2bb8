"""bench/results.py's `captured_renders`: the page's "templates alone" figure renders again only the outermost
templates a request rendered, so a template rendered inside another (a form's widgets) is not counted twice."""

from django import forms
from django.template import engines

from bench.results import captured_renders


class NoteForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea)


def test_a_form_rendered_inside_a_template_is_not_captured_on_its_own() -> None:
    section = engines["django"].from_string("<section>{{ form }}</section>")
    with captured_renders() as renders:
        html = section.render({"form": NoteForm()})
    assert "<textarea" in html  # the form's own templates did render, inside the section
    assert [template for template, _context, _request in renders] == [section]


def test_templates_rendered_one_after_another_are_all_captured() -> None:
    first = engines["django"].from_string("<p>{{ a }}</p>")
    second = engines["django"].from_string("<p>{{ b }}</p>")
    with captured_renders() as renders:
        first.render({"a": 1})
        second.render({"b": 2})
    assert [template for template, _context, _request in renders] == [first, second]
