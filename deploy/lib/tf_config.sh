# Shell functions that write a TF_CONFIG, sourced by every deploy entry
# point (the container's, Slurm's, ssh's), so each engine's facts (a pod's
# ordinal, a Slurm task's rank, a hosts file) become the same JSON the
# programs read (common/cluster_spec.h). The programs check the result:
# `deepfm task --dry_run` prints the spec it resolves or names what is wrong.

# dfm_json_list ADDR... -> ["ADDR", ...]. Addresses carry no quotes or
# backslashes; one that does is refused rather than escaped into a spec
# nobody meant.
dfm_json_list() {
  local out="" sep="" a
  for a in "$@"; do
    case "$a" in
      *[\"\\]* | "")
        echo "deepfm deploy: bad address '$a' (empty, or holds a quote or backslash)" >&2
        return 1
        ;;
    esac
    out+="$sep\"$a\""
    sep=", "
  done
  printf '[%s]' "$out"
}

# dfm_cluster_json -> {"cluster": {...}}, the spec without a task (a
# launcher's view), from the arrays DFM_PS, DFM_WORKER and (optional, at
# most one) DFM_CHIEF in the caller's scope.
dfm_cluster_json() {
  local ps worker chief=""
  ps=$(dfm_json_list "${DFM_PS[@]}") || return 1
  worker=$(dfm_json_list "${DFM_WORKER[@]}") || return 1
  if [ "${#DFM_CHIEF[@]}" -gt 0 ]; then
    chief=$(dfm_json_list "${DFM_CHIEF[@]}") || return 1
    chief=", \"chief\": $chief"
  fi
  printf '{"cluster": {"ps": %s, "worker": %s%s}}' "$ps" "$worker" "$chief"
}

# dfm_tf_config TYPE INDEX -> TF_CONFIG JSON: dfm_cluster_json's spec with
# this task.
dfm_tf_config() {
  local type="$1" index="$2" cluster
  case "$type" in ps | worker | chief) ;; *)
    echo "deepfm deploy: task type '$type' is not ps, worker or chief" >&2
    return 1
    ;;
  esac
  case "$index" in '' | *[!0-9]*)
    echo "deepfm deploy: task index '$index' is not a number" >&2
    return 1
    ;;
  esac
  cluster=$(dfm_cluster_json) || return 1
  printf '%s, "task": {"type": "%s", "index": %d}}' "${cluster%\}}" "$type" "$index"
}

# dfm_quote WORD -> WORD in single quotes, safe for any POSIX shell.
dfm_quote() {
  printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}
