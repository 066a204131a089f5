#!/usr/bin/env Rscript
### Pinned metafor values for the ratio of means (measure "ROM", issue 10).
###
### Writes tests/data/metafor_reference_rom.json (run from the repository root,
### or use tests/reference/regenerate.sh). Numbers with sprintf("%.17g"), which
### round-trips every double; no time stamps, so reruns are byte-identical.
### Converged settings as in run_metafor.R.

suppressPackageStartupMessages({
   library(metafor)
   library(metadat)
   library(jsonlite)
})

OUT  <- file.path("tests", "data", "metafor_reference_rom.json")
CTRL <- "list(threshold=1e-12, tol=1e-12, maxiter=10000)"

num <- function(x) paste0("[", paste(vapply(as.numeric(x), function(v)
   if (v == trunc(v) && abs(v) < 1e15) sprintf("%.0f", v) else sprintf("%.17g", v), ""),
   collapse=", "), "]")

dat <- dat.normand1999
call_es  <- "escalc(measure=\"ROM\", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=dat)"
es <- eval(parse(text=call_es))
call_rma <- paste0("rma(yi, vi, data=es, method=\"REML\", test=\"knha\", control=", CTRL, ")")
res <- eval(parse(text=call_rma))

lines <- c(
   "{",
   "  \"provenance\": {",
   sprintf("    \"r_version\": \"%s\",", R.version.string),
   sprintf("    \"metafor_version\": \"%s\",", as.character(packageVersion("metafor"))),
   sprintf("    \"metadat_version\": \"%s\",", as.character(packageVersion("metadat"))),
   "    \"script\": \"tests/reference/run_metafor_rom.R\",",
   "    \"number_format\": \"sprintf('%.17g') (integers as integers)\"",
   "  },",
   "  \"escalc_rom\": {",
   "    \"dataset\": \"dat.normand1999 (metadat)\",",
   sprintf("    \"call\": %s,", toJSON(call_es, auto_unbox=TRUE)),
   sprintf("    \"m1i\": %s, \"sd1i\": %s, \"n1i\": %s,", num(dat$m1i), num(dat$sd1i), num(dat$n1i)),
   sprintf("    \"m2i\": %s, \"sd2i\": %s, \"n2i\": %s,", num(dat$m2i), num(dat$sd2i), num(dat$n2i)),
   sprintf("    \"yi\": %s,", num(es$yi)),
   sprintf("    \"vi\": %s", num(es$vi)),
   "  },",
   "  \"rma_rom\": {",
   sprintf("    \"call\": %s,", toJSON(call_rma, auto_unbox=TRUE)),
   sprintf("    \"estimate\": %s, \"se\": %s, \"ci_lb\": %s, \"ci_ub\": %s,",
           sprintf("%.17g", res$beta[1]), sprintf("%.17g", res$se), sprintf("%.17g", res$ci.lb),
           sprintf("%.17g", res$ci.ub)),
   sprintf("    \"tau2\": %s, \"I2\": %s", sprintf("%.17g", res$tau2), sprintf("%.17g", res$I2)),
   "  }",
   "}")
writeLines(lines, OUT)
