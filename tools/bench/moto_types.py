"""Prints, one a line, the resource types used by the templates under DIR that moto's
CloudFormation has no model for (it neither creates them nor knows their attributes). Run with
moto's Python: .venv/moto/bin/python tools/bench/moto_types.py DIR"""
import logging
import re
import sys
from pathlib import Path

from moto.cloudformation.parsing import resource_class_from_type

logging.disable(logging.WARNING)  # "No Moto CloudFormation support for …"
types = set()
for path in Path(sys.argv[1]).rglob("*.yml"):
    types |= set(re.findall(r"^\s+Type: (AWS::[A-Za-z0-9]+::[A-Za-z0-9]+)\s*$", path.read_text(), re.M))
for t in sorted(types):
    if resource_class_from_type(t) is None:
        print(t)
