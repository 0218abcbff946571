"""moto server for scripts/bench-apply, the apply part of scripts/demo and the
api-gateway-microservices pipeline test: moto 5.2.5 with two gaps of its CloudFormation filled as
AWS behaves. Same arguments as moto_server; run with moto's Python:

    .venv/moto/bin/python tools/bench/moto_apply.py -H 127.0.0.1 -p PORT

1. A stack created by executing a CREATE change set gets its Outputs (and Exports). In stock
   moto, CloudFormationBackend.execute_change_set applies the change set's resources to the
   stack but never builds the stack's output map: the Stack object was made by
   create_change_set with an empty template ({}), its output map is built from that, and
   execute_change_set only sets `stack.template` afterwards. So DescribeStacks shows no Outputs
   and a dependant stack reading `${vpc.VpcId}` has nothing to read. Here, after the stock
   execute_change_set (CREATE or UPDATE), the stack's template is parsed
   (`stack._parse_template()`), its description set and its output map rebuilt from its
   resources (`stack._create_output_map()`, what moto's own Stack.__init__ and Stack.update do);
   for a CREATE, its exports are also registered with the region, as moto's create_stack does.
   Sceptre's CreateStack path is untouched by this (it goes through moto's create_stack).
2. DescribeStacks prints List<…> parameters comma-joined, as AWS does (tools/bench/
   moto_list_params.py, imported: the same fix as scripts/bench-plan's second pass).

Nothing else changes: change sets still execute synchronously (tools/bench/delay_proxy.py makes
stack operations take time).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import moto_list_params  # noqa: E402,F401  (patches DescribeStacks' List<…> parameters)
from moto.cloudformation import models  # noqa: E402
from moto.server import main  # noqa: E402

_execute_change_set = models.CloudFormationBackend.execute_change_set


def execute_change_set(self, change_set_name, stack_name=None):
    change_set = self.change_sets.get(change_set_name)
    if change_set is None:
        for cs in self.change_sets.values():
            if cs.change_set_name == change_set_name:
                change_set = cs
    _execute_change_set(self, change_set_name, stack_name)
    stack = self.stacks[change_set.stack_id]
    stack._parse_template()
    stack.description = stack.template_dict.get("Description")
    stack.output_map = stack._create_output_map()
    if change_set.change_set_type == "CREATE":
        self._validate_export_uniqueness(stack)
        for export in stack.exports:
            self.exports[export.name] = export


models.CloudFormationBackend.execute_change_set = execute_change_set

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
