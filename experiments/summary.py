"""Print a model's layers with their output shapes, parameters and multiply-adds, and the totals:

  python -m experiments.summary --model=resnet50 [--input_shape=224,224,3] [--num_classes=1000] \
      [--model_args='version=v1.5 shortcut=B']

The model is traced abstractly (no arrays are allocated), so the largest nets take seconds.
"""

from absl import app, flags

flags.DEFINE_string('model', None, 'Registered model name (jaxnets.models.names()).')
flags.DEFINE_string('input_shape', '224,224,3', 'One input without the batch axis: H,W,C for an image '
                    '(e.g. 32,32,3) or N for a vector (e.g. 784).')
flags.DEFINE_integer('num_classes', 1000, 'Number of output classes (at least 1).', lower_bound=1)
flags.DEFINE_string('model_args', '', "The model's fields as 'field=value field=value', as in a config's "
                    "model group, e.g. 'version=v1.5' or 'branch_kernel=3 aux_logits=True'.")
flags.mark_flags_as_required(['model'])


def main(argv):
  """Build --model, trace it on --input_shape and print its summary table."""
  del argv
  from jaxnets import assignments, models, summary  # noqa: PLC0415
  try:
    shape = summary.parse_shape(flags.FLAGS.input_shape)
    fields = dict(assignments.parse(flags.FLAGS.model_args, '--model_args'))
    model = models.create(flags.FLAGS.model, num_classes=flags.FLAGS.num_classes, **fields)
    result = summary.summarize(model, shape)
  except (ValueError, TypeError) as e:  # A bad name, shape or model field: the message says which.
    raise app.UsageError(str(e)) from e
  print(summary.format_table(result))


if __name__ == '__main__':
  app.run(main)
