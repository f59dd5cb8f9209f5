"""'field=value field=value' text, as experiment variants and the summary command's --model_args write it."""

import ast


def parse_value(text: str):
  """A Python literal where the text is one (1, 0.5, True, 'x', (32, 64)), else the bare string."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def parse(text: str, where: str) -> list[tuple[str, object]]:
  """[(field, value), ...] from whitespace-separated field=value tokens; `where` names the text in errors."""
  settings = []
  for token in text.split():
    field, sep, value = token.partition('=')
    if not sep or not field or not value:
      raise ValueError(f'bad assignment {token!r} in {where}; expected field=value')
    settings.append((field, parse_value(value)))
  return settings
