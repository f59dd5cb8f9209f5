"""'field=value field=value' text, as experiment variants and the summary command's --model_args write it."""

import ast
import shlex


def parse_value(text: str):
  """A Python literal where the text is one (1, 0.5, True, 'x', (32, 64)), else the bare string."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def parse(text: str, where: str) -> list[tuple[str, object]]:
  """[(field, value), ...] from whitespace-separated field=value tokens; a token with spaces in its value is
  quoted whole ("data.classes=Sandal,Ankle boot"), quotes inside a token stay (x='3,5' is a string), and
  backslashes stay (regular expressions). `where` names the text in errors."""
  lexer = shlex.shlex(text, posix=False)
  lexer.whitespace_split = True
  lexer.commenters = ''
  try:
    tokens = list(lexer)
  except ValueError as e:
    raise ValueError(f'bad quoting in {where}: {text!r} ({e})') from e
  settings = []
  for token in tokens:
    if len(token) > 1 and token[0] == token[-1] and token[0] in '"\'':
      token = token[1:-1]
    field, sep, value = token.partition('=')
    if not sep or not field or not value:
      raise ValueError(f'bad assignment {token!r} in {where}; expected field=value')
    settings.append((field, parse_value(value)))
  return settings
