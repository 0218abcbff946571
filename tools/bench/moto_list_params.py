"""moto server, with one rendering bug of its CloudFormation fixed, for the second pass of
scripts/bench-plan. Same arguments as moto_server; run with moto's Python:

    .venv/moto/bin/python tools/bench/moto_list_params.py -H 127.0.0.1 -p PORT

moto 5.2.5 keeps the value of a `List<…>` or `CommaDelimitedList` parameter as a Python list and
DescribeStacks prints it with str(): `['subnet-1', 'subnet-2']` where AWS says
`subnet-1,subnet-2`. A tool that compares the deployed parameters with its config (formwork's
"nothing to do" check, Sceptre's diff) then sees a change in every stack with such a parameter.
Here DescribeStacks joins such values with commas, as AWS does; nothing else changes.
"""
import sys

from moto.cloudformation import models
from moto.server import main

_parameter_list = models.Stack.parameter_list.fget


def parameter_list(self):
    out = _parameter_list(self)
    for p in out:
        if isinstance(p["ParameterValue"], list):
            p["ParameterValue"] = ",".join(map(str, p["ParameterValue"]))
    return out


models.Stack.parameter_list = property(parameter_list)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
