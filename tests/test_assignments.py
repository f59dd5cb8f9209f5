"""field=value text: literals become Python values, anything else stays a string."""

import pytest

from jaxnets import assignments


def test_values_are_literals_where_they_can_be():
  text = "depth=20 lr=0.05 residual=False version=v1.5 name='adam' widths=(32,64)"
  assert assignments.parse(text, 'test') == [('depth', 20), ('lr', 0.05), ('residual', False),
                                             ('version', 'v1.5'), ('name', 'adam'), ('widths', (32, 64))]
  assert assignments.parse('  ', 'test') == []


@pytest.mark.parametrize('token', ['depth', '=3', 'depth='])
def test_a_bad_token_is_named(token):
  with pytest.raises(ValueError, match=f"bad assignment '{token}' in the test text; expected field=value"):
    assignments.parse(f'lr=0.1 {token}', 'the test text')
