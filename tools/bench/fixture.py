"""The scenery of scripts/bench-plan: the config repository formwork plans, the equivalent Sceptre
projects, the SSM parameters, and clean-up between measured runs. Needs PyYAML and boto3 (run it
with .venv/sceptre/bin/python).

    fixture.py config SRC DEST [TYPE…]   formwork config repository in DEST (not committed): SRC's
                                         pipelines/placeos and three environments in moto's account;
                                         TYPEs: resource types moto has no model for (see moto_types.py)
    fixture.py sceptre REPO DEST         one Sceptre project per environment of the formwork config
                                         in REPO: DEST/<env>/config/{config.yaml,<stack>.yaml}
    fixture.py certs URL REPO            ACM certificates in moto for the environments' CertificateArn
    fixture.py ssm URL REPO              the SecureStrings the config reads, put into moto at URL
    fixture.py stacks URL REPO           check every stack of every environment is deployed with outputs
    fixture.py clean-change-sets URL REPO  delete every change set of every stack of the config

The Sceptre generator mirrors formwork's merging rules (docs/config.md, "How values are merged"):
variables are the pipeline's defaults overlaid with the environment's, filled in with ${env.…};
parameters are `defaults.parameters` (only where the stack's template declares the parameter),
then the pipeline stack's `parameters`, then the environment's per-stack `parameters`; tags are
`defaults.tags`, the stack's tags, the environment's tags, the environment's per-stack tags.
`${var.X}` and `${env.name|region|account}` are filled in; `${stack.Output}` becomes Sceptre's
`!stack_output stack.yaml::Output` (which also makes the dependency), `${ssm:/path}` becomes
`!ssm /path` (sceptre-ssm-resolver), and a string mixing text and references becomes `!sub`.
`needs` become `dependencies`. Capabilities need nothing: Sceptre always acknowledges all three.
The stack tags also carry the two tags formwork puts on the stacks it deploys
(`formwork:pipeline`, `formwork:environment`): the stacks Sceptre deploys then look to formwork
as if it had deployed them (without those tags formwork would plan a tag change for each).

Why one Sceptre project per environment: Sceptre names a stack `<project_code>-<path>` and its
`!stack_output` resolver rebuilds the name of the stack it reads the same way (it ignores a
`stack_name` override), so `<env>-<stack>` names, the ones formwork uses, need project_code
`<env>` and the stack configs at the top of that project's config/ directory.
"""
import os
import re
import shutil
import sys
from pathlib import Path

import yaml

ACCOUNT = "123456789012"  # the account moto always reports
REGION = "ap-southeast-2"
PIPELINE = "placeos"


def die(msg):
    print(f"fixture.py: {msg}", file=sys.stderr)
    sys.exit(1)


# ------------------------------------------------------------------------------------------------
# The formwork config repository
# ------------------------------------------------------------------------------------------------


def sub_line(text, pattern, repl, what, count=1):
    new, n = re.subn(pattern, repl, text, count=count, flags=re.M)
    if n == 0:
        die(f"{what}: no line matches {pattern!r}")
    return new


def in_moto_account(text, what):
    """An environment file moved into moto's account: `account` set, `role_arn` dropped (moto's
    STS would report the same account either way; without a role neither tool assumes one)."""
    text = sub_line(text, r'^account: .*$', f'account: "{ACCOUNT}"', what)
    text = re.sub(r"^role_arn: .*\n", "", text, flags=re.M)
    text = sub_line(text, r'^region: .*$', f"region: {REGION}", what)
    # Certificate ARNs name the environment's old account; keep them consistent.
    return re.sub(r"(arn:aws:acm:[a-z0-9-]+:)\d{12}(:)", rf"\g<1>{ACCOUNT}\2", text)


def qa_from_staging(text):
    """A third environment, derived from staging with its own values."""
    what = "qa (from staging)"
    text = sub_line(text, r"^# Staging:.*$", "# QA: derived from staging by scripts/bench-plan, "
                    "with its own values.", what)
    text = sub_line(text, r"^description: .*$", "description: PlaceOS QA, for the test team", what)
    text = sub_line(text, r"^(  EnvironmentName:) .*$", r"\1 PlaceOS-qa", what)
    text = sub_line(text, r"^(  ImageTag:) .*$", r'\1 "1.3.0-rc1"', what)
    text = sub_line(text, r"^(  AdminEmail:) .*$", r"\1 placeos-admin@qa.example.com", what)
    text = sub_line(text, r"^(  environment:) .*$", r"\1 qa", what)
    text = sub_line(text, r"^(  cost-centre:) .*$", r"\1 quality", what)
    text = sub_line(text, r"^(      VpcCidr:) .*$", r"\1 10.42.0.0/16", what)
    text = sub_line(text, r"^(      VolumeSize:) .*$", r'\1 "10"', what)
    text = sub_line(text, r"^(      LogRetentionDays:) .*$", r'\1 "7"', what)
    text = sub_line(text, r"(certificate/)[0-9a-f-]+", r"\g<1>0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                    what)
    return text


# The benchmark's copy of the templates is changed where moto 5.2.5 cannot create a stack from
# them (each change is printed by `config`; the formwork and Sceptre sides use the same copy):
#
# 1. moto has no Fn::Cidr: its parser leaves `{"Fn::Cidr": …}` as it is, the enclosing Fn::Select
#    indexes that mapping, and CreateStack fails with HTTP 500 (KeyError: 0 in
#    moto/cloudformation/parsing.py clean_json). For a /16 VPC, `!Select [i, !Cidr [<vpc cidr>, 4,
#    8]]` is the i-th /24, `A.B.i.0/24`, which moto computes from VpcCidr with Split, Select and
#    Join. Every environment of the benchmark uses a /16.
# 2. moto's security group ingress needs FromPort and ToPort even for IpProtocol -1 (all
#    protocols, where AWS ignores ports): CreateStack fails with HTTP 500 (KeyError: 'FromPort').
#    `FromPort: -1, ToPort: -1` is added to such rules (what AWS itself reports for them).
# 3. `!GetAtt R.Attr` where R's type has no moto CloudFormation model (moto neither creates nor
#    knows it): in Outputs CreateStack fails with HTTP 500 (AttributeError: 'NoneType' object has
#    no attribute 'has_cfn_attr', moto/cloudformation/parsing.py validate_outputs); inside a
#    resource it fails with "Template error: instance of Fn::GetAtt references undefined resource
#    R". Each becomes `!Sub '${AWS::StackName}-R-Attr'`, a stand-in value of the same kind (a
#    string), unique per stack.
CIDR_SELECT = re.compile(
    r"!Select \[(\d), !Cidr \[(?:!GetAtt Vpc\.CidrBlock|!Ref VpcCidr), 4, 8\]\]")
CIDR_REPLACEMENT = (r"!Join ['', [!Select [0, !Split ['.', !Ref VpcCidr]], '.', "
                    r"!Select [1, !Split ['.', !Ref VpcCidr]], '.\1.0/24']]")
ALL_PROTOCOLS_FLOW = re.compile(r"IpProtocol: '-1',(?! FromPort)")
ALL_PROTOCOLS_BLOCK = re.compile(r"^( *)(- )?IpProtocol: '-1'\n(?!\1(?:  )?FromPort)", re.M)


def patch_for_moto(pipeline_dir, unsupported):
    """Changes the benchmark's copy of the templates so that moto can create their stacks (see
    above); prints each change. `unsupported`: resource types moto has no model for."""
    for path in sorted((pipeline_dir / "templates").glob("*.yml")):
        text = path.read_text()
        changes = []
        text, n = CIDR_SELECT.subn(CIDR_REPLACEMENT, text)
        if n:
            changes.append(f"{n} x `!Select [i, !Cidr [<VPC CIDR>, 4, 8]]` -> the same /24 of a "
                           "/16 from VpcCidr with !Join/!Split/!Select (no Fn::Cidr in moto)")
        if "!Cidr" in text or "Fn::Cidr" in text:
            die(f"{path}: a Fn::Cidr this benchmark does not know how to replace (moto has none)")
        text, n1 = ALL_PROTOCOLS_FLOW.subn("IpProtocol: '-1', FromPort: -1, ToPort: -1,", text)

        def block(m):
            indent = m.group(1) + ("  " if m.group(2) else "")
            return m.group(0) + f"{indent}FromPort: -1\n{indent}ToPort: -1\n"

        text, n2 = ALL_PROTOCOLS_BLOCK.subn(block, text)
        if n1 + n2:
            changes.append(f"{n1 + n2} x IpProtocol '-1' security group rule: + FromPort: -1, ToPort: -1 "
                           "(moto needs them)")
        with open(path) as f:
            resources = (yaml.load(f, Loader=TemplateLoader) or {}).get("Resources") or {}
        ids = sorted(r for r, body in resources.items()
                     if isinstance(body, dict) and body.get("Type") in unsupported)
        if ids:
            getatt = re.compile(r"!GetAtt (" + "|".join(map(re.escape, ids)) + r")\.([A-Za-z0-9.]+)")
            done = sorted(set(f"{m.group(1)}.{m.group(2)} ({resources[m.group(1)]['Type']})"
                              for m in getatt.finditer(text)))
            text, n = getatt.subn(lambda m: f"!Sub '${{AWS::StackName}}-{m.group(1)}-"
                                  f"{m.group(2).replace('.', '-')}'", text)
            if n:
                changes.append(f"{n} x !GetAtt of a type moto does not model -> "
                               f"!Sub '${{AWS::StackName}}-R-Attr': {', '.join(done)}")
        if changes:
            path.write_text(text)
            for c in changes:
                print(f"  templates/{path.name}: {c}")


def make_config(src, dest, unsupported):
    src, dest = Path(src), Path(dest)
    shutil.copytree(src / "pipelines" / PIPELINE, dest / "pipelines" / PIPELINE)
    patch_for_moto(dest / "pipelines" / PIPELINE, unsupported)
    texts = {}
    for env in ("staging", "production"):
        path = src / "environments" / env / "environment.yml"
        texts[env] = in_moto_account(path.read_text(), str(path))
    texts["qa"] = qa_from_staging(texts["staging"])
    for env, text in texts.items():
        (dest / "environments" / env).mkdir(parents=True)
        (dest / "environments" / env / "environment.yml").write_text(text)
        cidr = ((load_config(dest / "environments" / env / "environment.yml").get("stacks") or {})
                .get("vpc") or {}).get("parameters", {}).get("VpcCidr", "10.40.0.0/16")
        if not cidr.endswith("/16"):
            die(f"{env}: VpcCidr {cidr} is not a /16, which the Fn::Cidr stand-in assumes")


# ------------------------------------------------------------------------------------------------
# Reading the formwork config
# ------------------------------------------------------------------------------------------------


def load_config(path):
    # BaseLoader: every scalar stays the string written, as formwork passes values "exactly as
    # written" (`1.10` stays `1.10`).
    with open(path) as f:
        return yaml.load(f, Loader=yaml.BaseLoader) or {}


class TemplateLoader(yaml.SafeLoader):
    pass


TemplateLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def template_parameters(path):
    with open(path) as f:
        doc = yaml.load(f, Loader=TemplateLoader) or {}
    return set((doc.get("Parameters") or {}).keys())


def environments(repo):
    root = Path(repo) / "environments"
    return sorted(p.name for p in root.iterdir() if (p / "environment.yml").is_file())


def parse(text):
    """`${…}` expressions of a config string: a list of ("text", s) and ("ref", inner) parts."""
    parts, i, buf = [], 0, ""
    while i < len(text):
        if text.startswith("$${", i):
            buf += "${"
            i += 3
        elif text.startswith("${", i):
            depth, j = 1, i + 2
            while j < len(text) and depth:
                if text.startswith("${", j):
                    depth += 1
                    j += 2
                    continue
                if text[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                die(f"unclosed ${{ in {text!r}")
            if buf:
                parts.append(("text", buf))
                buf = ""
            parts.append(("ref", text[i + 2:j - 1]))
            i = j
        else:
            buf += text[i]
            i += 1
    if buf:
        parts.append(("text", buf))
    return parts


class Env:
    """One environment of the config, resolved as formwork resolves it."""

    def __init__(self, repo, name):
        self.repo, self.name = Path(repo), name
        self.env = load_config(self.repo / "environments" / name / "environment.yml")
        self.pipeline_dir = self.repo / "pipelines" / self.env["pipeline"]
        self.pipeline = load_config(self.pipeline_dir / "pipeline.yml")
        self.facts = {"name": name, "region": self.env["region"], "account": self.env["account"]}
        self.vars = {}
        for var, decl in (self.pipeline.get("vars") or {}).items():
            if "default" in (decl or {}):
                self.vars[var] = self.fill(decl["default"])
        for var, value in (self.env.get("vars") or {}).items():
            self.vars[var] = self.fill(value)

    def fill(self, value):
        """Variables and environment facts filled in; other references kept as `${…}`."""
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        out = ""
        for kind, s in parse(value):
            if kind == "text":
                out += s.replace("${", "$${")
            elif s.startswith("var."):
                out += self.vars[s[4:]].replace("${", "$${")
            elif s.startswith("env."):
                out += self.facts[s[4:]]
            elif s.startswith("ssm:"):
                out += "${ssm:" + self.fill(s[4:]) + "}"
            else:
                out += "${" + s + "}"
        return out

    def stacks(self):
        """(key, settings) of the stacks enabled in this environment, in pipeline order."""
        env_stacks = self.env.get("stacks") or {}
        for key, stack in self.pipeline["stacks"].items():
            own = env_stacks.get(key) or {}
            enabled = own.get("enabled", stack.get("enabled", "true"))
            if str(enabled).lower() == "true":
                if "stack_name" in stack or "stack_name" in own:
                    die(f"{self.name}/{key}: stack_name overrides cannot be mirrored in Sceptre")
                yield key, stack, own

    def desired(self, key, stack, own):
        declared = template_parameters(self.pipeline_dir / stack["template"])
        params = {}
        for name, value in ((self.pipeline.get("defaults") or {}).get("parameters") or {}).items():
            if name in declared:
                params[name] = value
        params.update(stack.get("parameters") or {})
        params.update(own.get("parameters") or {})
        params = {k: self.fill(",".join(v) if isinstance(v, list) else v) for k, v in params.items()}
        tags = {}
        tags.update((self.pipeline.get("defaults") or {}).get("tags") or {})
        tags.update(stack.get("tags") or {})
        tags.update(self.env.get("tags") or {})
        tags.update(own.get("tags") or {})
        tags = {k: self.fill(v) for k, v in tags.items()}
        enabled = {k for k, _, _ in self.stacks()}
        needs = [n for n in (stack.get("needs") or []) if n in enabled]
        return {"name": f"{self.name}-{key}", "template": stack["template"], "parameters": params,
                "tags": tags, "needs": needs}


# ------------------------------------------------------------------------------------------------
# The Sceptre projects
# ------------------------------------------------------------------------------------------------


class Tagged:
    def __init__(self, tag, value):
        self.tag, self.value = tag, value


def represent_tagged(dumper, data):
    if isinstance(data.value, list):
        return dumper.represent_sequence(data.tag, data.value, flow_style=False)
    return dumper.represent_scalar(data.tag, data.value)


yaml.SafeDumper.add_representer(Tagged, represent_tagged)


def sceptre_value(value):
    """A formwork parameter value (variables filled in) as a Sceptre parameter value."""
    parts = []
    for kind, s in parse(value):
        if kind == "text":
            parts.append(("text", s))
        elif s.startswith("ssm:"):
            parts.append(("resolver", Tagged("!ssm", s[4:])))
        else:
            stack, _, output = s.partition(".")
            parts.append(("resolver", Tagged("!stack_output", f"{stack}.yaml::{output}")))
    if not any(kind == "resolver" for kind, _ in parts):
        return "".join(s for _, s in parts)
    if len(parts) == 1:
        return parts[0][1]
    fmt, args = "", {}
    for kind, s in parts:
        if kind == "text":
            fmt += s.replace("{", "{{").replace("}", "}}")
        else:
            name = f"v{len(args)}"
            fmt += "{" + name + "}"
            args[name] = s
    return Tagged("!sub", [fmt, args])


def make_sceptre(repo, dest):
    repo, dest = Path(repo), Path(dest)
    for name in environments(repo):
        env = Env(repo, name)
        project = dest / name
        (project / "config").mkdir(parents=True)
        config = {"project_code": name, "region": env.facts["region"]}
        (project / "config" / "config.yaml").write_text(
            yaml.safe_dump(config, default_flow_style=False, sort_keys=False))
        for key, stack, own in env.stacks():
            d = env.desired(key, stack, own)
            # Templates are read from the config repository's working tree through a symlink, so
            # a committed template change is seen by both tools. Sceptre wants `.yaml`, not `.yml`.
            link = Path(re.sub(r"\.yml$", ".yaml", d["template"]))
            (project / "templates" / link).parent.mkdir(parents=True, exist_ok=True)
            if not (project / "templates" / link).is_symlink():
                os.symlink((env.pipeline_dir / d["template"]).resolve(), project / "templates" / link)
            doc = {"template": {"type": "file", "path": str(link)}}
            if d["parameters"]:
                doc["parameters"] = {k: sceptre_value(v) for k, v in d["parameters"].items()}
            # The tags formwork itself puts on the stacks it deploys (src/plan/live.rs stack_tags;
            # its commit tag is left out of its comparison): the stacks look as if formwork had
            # deployed them, and Sceptre's config asks for the same tags.
            doc["stack_tags"] = d["tags"] | {"formwork:pipeline": env.env["pipeline"],
                                             "formwork:environment": env.name}
            if d["needs"]:
                doc["dependencies"] = [f"{n}.yaml" for n in d["needs"]]
            (project / "config" / f"{key}.yaml").write_text(
                f"# {d['name']}: generated by tools/bench/fixture.py from the formwork config\n"
                + yaml.safe_dump(doc, default_flow_style=False, sort_keys=False, width=1000))


# ------------------------------------------------------------------------------------------------
# AWS side
# ------------------------------------------------------------------------------------------------


def client(service, url, region=REGION):
    import boto3
    return boto3.client(service, endpoint_url=url, region_name=region,
                        aws_access_key_id="bench", aws_secret_access_key="bench")


def ssm_paths(repo):
    """(region, path) of every `${ssm:…}` the config's enabled stacks read."""
    out = set()
    for name in environments(repo):
        env = Env(repo, name)
        for key, stack, own in env.stacks():
            for value in env.desired(key, stack, own)["parameters"].values():
                for kind, s in parse(value):
                    if kind == "ref" and s.startswith("ssm:"):
                        out.add((env.facts["region"], s[4:]))
    return sorted(out)


def put_ssm(url, repo):
    for region, path in ssm_paths(repo):
        env = path.strip("/").split("/")[1] if path.count("/") > 2 else "bench"
        client("ssm", url, region).put_parameter(
            Name=path, Value=f"Bench-{env}-Passw0rd!", Type="SecureString", Overwrite=True)
        print(f"  SecureString {path}")


def request_certificates(url, repo):
    """moto's ELBv2 accepts an HTTPS listener only with a certificate its ACM has: each
    environment's `CertificateArn` is replaced by one requested from moto's ACM."""
    for name in environments(repo):
        path = Path(repo) / "environments" / name / "environment.yml"
        text = path.read_text()
        env = load_config(path)
        arn = client("acm", url, env["region"]).request_certificate(
            DomainName=f"{name}.placeos.example.com")["CertificateArn"]
        text = sub_line(text, r"^(\s+CertificateArn:) arn:aws:acm:.*$", rf"\1 {arn}", str(path))
        path.write_text(text)
        print(f"  {name}: CertificateArn {arn} (requested from moto's ACM)")


def all_stacks(repo):
    for name in environments(repo):
        env = Env(repo, name)
        for key, stack, own in env.stacks():
            yield env, key, env.desired(key, stack, own)["name"]


def read_outputs(env):
    """{stack key: output names} that the environment's stacks read with ${stack.Output}."""
    read = {}
    for key, stack, own in env.stacks():
        for value in env.desired(key, stack, own)["parameters"].values():
            for kind, s in parse(value):
                if kind == "ref" and not s.startswith("ssm:"):
                    other, _, output = s.partition(".")
                    read.setdefault(other, set()).add(output)
    return read


def check_stacks(url, repo):
    """Every stack exists in a complete state with every output another stack reads; prints
    outputs that are declared but missing and read by no stack. Returns the number of bad stacks."""
    bad, cfn, read = 0, {}, {}
    for env, key, name in all_stacks(repo):
        region = env.facts["region"]
        cfn.setdefault(region, client("cloudformation", url, region))
        if env.name not in read:
            read[env.name] = read_outputs(env)
        try:
            s = cfn[region].describe_stacks(StackName=name)["Stacks"][0]
        except Exception as e:  # noqa: BLE001 - reported
            print(f"  {name}: {e}")
            bad += 1
            continue
        outputs = {o["OutputKey"] for o in s.get("Outputs", [])}
        with open(env.pipeline_dir / env.pipeline["stacks"][key]["template"]) as f:
            declared = set(((yaml.load(f, Loader=TemplateLoader) or {}).get("Outputs") or {}))
        needed = read[env.name].get(key, set())
        if not s["StackStatus"].endswith("_COMPLETE") or needed - outputs:
            print(f"  {name}: {s['StackStatus']}, outputs {sorted(outputs)}, other stacks read "
                  f"{sorted(needed)}")
            bad += 1
        elif declared - outputs:
            print(f"  note: {name} has no output {', '.join(sorted(declared - outputs))} (read by "
                  "no stack)")
    return bad


def clean_change_sets(url, repo):
    """Deletes every change set of every stack of the config (moto's ListChangeSets ignores
    StackName, so the names are collected once and deleted per stack)."""
    n = 0
    for env, key, name in all_stacks(repo):
        cfn = client("cloudformation", url, env.facts["region"])
        token = None
        while True:
            kw = {"StackName": name} | ({"NextToken": token} if token else {})
            page = cfn.list_change_sets(**kw)
            for cs in page.get("Summaries", []):
                if cs.get("StackName") == name:
                    cfn.delete_change_set(ChangeSetName=cs["ChangeSetId"])
                    n += 1
            token = page.get("NextToken")
            if not token:
                break
    return n


def main(argv):
    if argv[:1] == ["config"] and len(argv) >= 3:
        make_config(argv[1], argv[2], set(argv[3:]))
    elif argv[:1] == ["sceptre"] and len(argv) == 3:
        make_sceptre(argv[1], argv[2])
    elif argv[:1] == ["certs"] and len(argv) == 3:
        request_certificates(argv[1], argv[2])
    elif argv[:1] == ["ssm"] and len(argv) == 3:
        put_ssm(argv[1], argv[2])
    elif argv[:1] == ["stacks"] and len(argv) == 3:
        return 1 if check_stacks(argv[1], argv[2]) else 0
    elif argv[:1] == ["clean-change-sets"] and len(argv) == 3:
        print(clean_change_sets(argv[1], argv[2]))
    else:
        print(__doc__, file=sys.stderr)
        return 64
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
