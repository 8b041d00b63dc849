# SER workflow: the one hand-written wiring. dvc.yaml is generated from it
# (python -m ser.workflow.wiring dvc > dvc.yaml; a test checks the committed file is current).
#   snakemake --cores 2                         build everything (profiles/default applies)
#   snakemake -n                                show what would run
#   snakemake --configfile other.yaml --cores 2 run with other settings (honoured by every script)
# Each rule passes its script the input/output paths and the params file it runs with;
# the rules are in workflow/rules/*.smk, the settings in params.yaml (validated below).
from ser.layout import REPORT_HTML_PATH
from ser.params.load import check_yaml_or_exit, validate_or_exit
from ser.workflow.engines import claim_for_snakemake, release


# A YAML syntax error: one line with its line number (Snakemake's own message has none).
check_yaml_or_exit("params.yaml")


configfile: "params.yaml"


# One line naming the bad key, the same as the stage scripts print (schema: ser/schemas/).
validate_or_exit(config, "params.yaml")

# One engine at a time: this run holds DVC's own lock (a `dvc repro` meanwhile stops
# before touching anything) and refuses to start while a DVC command holds it.
DVC_GUARD = claim_for_snakemake(workflow)


include: "workflow/rules/common.smk"
include: "workflow/rules/corpora.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        REPORT_HTML_PATH,


onsuccess:
    record_in_dvc()  # `dvc commit` under this run's lock: no `dvc repro` can slip in
    release(DVC_GUARD)
    print_report_path()


onerror:
    release(DVC_GUARD)
