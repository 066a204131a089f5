#!/usr/bin/env Rscript
### Pinned reference values from metafor for the `meta` engine's tests.
###
### Writes tests/data/metafor_reference.json (path relative to the repository
### root; run from the root, or use tests/reference/regenerate.sh).
###
### metafor is not a test dependency: these numbers are pinned, not recomputed.
### Every case records the data (`input`), the R code that was run on it
### (`call`, evaluated verbatim with `dat <- data.frame(input)`), the main
### arguments (`args`) and the results (`output`), in the engine's vocabulary.
###
### Numbers are written with sprintf("%.17g"), which round-trips every double
### exactly; NA/NaN are written as null. The output contains no time stamps,
### so running the script twice gives a byte-identical file.
###
### Converged settings are used throughout (metafor's defaults stop early; see
### /work/shared/PEERS.md and tests/reference/README.md):
###   rma():     control=list(threshold=1e-12, tol=1e-12, maxiter=10000)
###   confint(): control=list(tol=1e-12, tau2.max=1e7)

suppressPackageStartupMessages({
   library(metafor)
   library(metadat)
   library(jsonlite)
})

RNGkind("Mersenne-Twister", "Inversion", "Rejection")
set.seed(20240229)

OUT <- file.path("tests", "data", "metafor_reference.json")
SCRIPT <- "tests/reference/run_metafor.R"

### control settings, as strings so that they appear verbatim in every call
CTRL    <- "list(threshold=1e-12, tol=1e-12, maxiter=10000)"
CI_CTRL <- "list(tol=1e-12, tau2.max=1e7)"
ci_ctrl <- eval(parse(text=CI_CTRL))

############################################################################
### JSON writer (jsonlite::toJSON(digits=NA) keeps only 15 significant digits,
### which does not round-trip; this writer uses %.17g)

jarr <- function(x) structure(x, class=c("jarr", class(x)))   # force a JSON array

## %.17g: glibc prints the exact decimal rounded to 17 significant digits,
## which reads back as the same double under a correctly rounded parser
## (Python's). Shorter forms were tried and rejected: R's own parser is not
## correctly rounded (e.g. "%.16g" of an AICc value read back equal in R but
## not in Python), so R cannot be used to decide that a shorter form is safe.
fmt_num <- function(x) {
   if (is.na(x)) return("null")
   if (is.infinite(x)) stop("infinite value in output")
   if (x == 0) return("0")
   if (x == trunc(x) && abs(x) < 1e15) return(sprintf("%.0f", x))
   sprintf("%.17g", x)
}

fmt_str <- function(s) {
   if (is.na(s)) return("null")
   s <- enc2utf8(s)
   s <- gsub("\\", "\\\\", s, fixed=TRUE)
   s <- gsub("\"", "\\\"", s, fixed=TRUE)
   s <- gsub("\n", "\\n", s, fixed=TRUE)
   s <- gsub("\t", "\\t", s, fixed=TRUE)
   paste0("\"", s, "\"")
}

fmt_atom <- function(x) {
   if (is.logical(x)) return(ifelse(is.na(x), "null", ifelse(x, "true", "false")))
   if (is.character(x) || is.factor(x)) return(vapply(as.character(x), fmt_str, ""))
   if (is.numeric(x)) return(vapply(as.numeric(x), fmt_num, ""))
   stop("unsupported type: ", class(x)[1])
}

to_json <- function(x, indent=0, path="") {
   pad  <- strrep("  ", indent)
   pad1 <- strrep("  ", indent + 1)
   if (is.null(x)) return("null")
   if (is.matrix(x)) {
      rows <- lapply(seq_len(nrow(x)), function(i) jarr(unname(x[i, ])))
      return(to_json(rows, indent, path))
   }
   if (is.list(x)) {
      if (!is.null(names(x))) {
         if (length(x) == 0) return("{}")
         if (any(names(x) == "") || anyDuplicated(names(x))) stop("bad names: ", paste(names(x), collapse=","))
         items <- vapply(seq_along(x), function(i)
            paste0(pad1, fmt_str(names(x)[i]), ": ", to_json(x[[i]], indent + 1, paste0(path, "/", names(x)[i]))), "")
         return(paste0("{\n", paste(items, collapse=",\n"), "\n", pad, "}"))
      }
      if (length(x) == 0) return("[]")
      items <- vapply(seq_along(x), function(i) {
         e <- x[[i]]
         nm <- if (is.list(e) && !is.null(e$id)) e$id else i
         paste0(pad1, to_json(e, indent + 1, paste0(path, "/", nm)))
      }, "")
      return(paste0("[\n", paste(items, collapse=",\n"), "\n", pad, "]"))
   }
   if (is.atomic(x)) {
      if (!is.null(names(x)) && !inherits(x, "jarr")) stop("named atomic vector; use as.list() or unname()")
      v <- tryCatch(fmt_atom(unclass(x)), error=function(e) stop(path, ": ", conditionMessage(e)))
      if (length(x) == 1 && !inherits(x, "jarr")) return(unname(v))
      return(paste0("[", paste(v, collapse=", "), "]"))
   }
   stop("cannot serialise object of class ", class(x)[1])
}

############################################################################
### running a case: evaluate the code string in a fresh environment holding
### `dat` (a data frame built from the input columns); collect warnings

input_frame <- function(input) {
   cols <- list()
   for (nm in names(input)) {
      v <- input[[nm]]
      if (is.list(v)) { for (m in names(v)) cols[[m]] <- unclass(v[[m]]) } else cols[[nm]] <- unclass(v)
   }
   as.data.frame(cols, stringsAsFactors=FALSE)
}

run_code <- function(code, input, extra=list()) {
   ## parent: the attached packages, not the global environment, so a call
   ## cannot silently depend on anything but `dat` (and `extra`)
   env <- new.env(parent=as.environment("package:metafor"))
   env$dat <- input_frame(input)
   for (nm in names(extra)) assign(nm, extra[[nm]], envir=env)
   warns <- character(0)
   val <- withCallingHandlers({
      v <- NULL
      for (e in parse(text=code)) v <- eval(e, env)
      v
   }, warning=function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
   })
   list(value=val, warnings=unique(warns), env=env)
}

### collect warnings from post-fit calls (predict, confint, ...)
quietly <- function(expr, sink) {
   withCallingHandlers(expr, warning=function(w) {
      assign("w", c(get("w", envir=sink), conditionMessage(w)), envir=sink)
      invokeRestart("muffleWarning")
   })
}

case <- function(id, call, input, args, output, warnings=character(0), notes=NULL) {
   out <- list(id=id, call=call, input=input, args=args, output=output,
               warnings=jarr(as.character(unique(warnings))))
   if (!is.null(notes)) out$notes <- notes
   out
}

num <- function(x) if (is.null(x)) NA_real_ else unname(as.numeric(x))
vec <- function(x) jarr(unname(as.numeric(x)))
q  <- function(s) paste0("\"", s, "\"")

############################################################################
### datasets

## normand1999: continuous (stroke units vs general wards, length of stay)
d_normand <- with(dat.normand1999, list(
   m1i=jarr(as.numeric(m1i)), sd1i=jarr(as.numeric(sd1i)), n1i=jarr(as.numeric(n1i)),
   m2i=jarr(as.numeric(m2i)), sd2i=jarr(as.numeric(sd2i)), n2i=jarr(as.numeric(n2i))))

## bcg: 2x2 tables (ai=tpos, bi=tneg, ci=cpos, di=cneg)
d_bcg <- with(dat.bcg, list(
   ai=jarr(as.numeric(tpos)), bi=jarr(as.numeric(tneg)),
   ci=jarr(as.numeric(cpos)), di=jarr(as.numeric(cneg))))
bcg_mods <- with(dat.bcg, list(ablat=jarr(as.numeric(ablat)), year=jarr(as.numeric(year))))
bcg_alloc <- jarr(as.character(dat.bcg$alloc))

## hand-made 2x2 tables with zero cells: ordinary, ai=0, ci=0, double zero
## (ai=ci=0), bi=0 (all treated had the event), di=0 and ai=0 with ci large
d_zero <- list(
   ai=jarr(c(12, 0, 5, 0, 20, 7, 0)),
   bi=jarr(c(38, 40, 45, 30, 0, 43, 25)),
   ci=jarr(c(20, 6, 0, 0, 10, 15, 25)),
   di=jarr(c(30, 34, 50, 30, 10, 0, 0)))

## nielweise2007: sparse binary (ai n1i ci n2i), study 15 (Yucel 2004) is 0/0
d_niel <- with(dat.nielweise2007, list(
   ai=jarr(as.numeric(ai)), n1i=jarr(as.numeric(n1i)),
   ci=jarr(as.numeric(ci)), n2i=jarr(as.numeric(n2i))))

## hackshaw1998: log odds ratios as given in metadat (yi, vi)
d_hack <- with(dat.hackshaw1998, list(yi=jarr(as.numeric(yi)), vi=jarr(as.numeric(vi))))

## sim1: yi/vi, k = 20, true mean 0.3, tau2 = 0.1 (rounded to 4/5 decimals)
sim1_vi <- round(runif(20, 0.01, 0.2), 5)
sim1_yi <- round(rnorm(20, 0.3 + rnorm(20, 0, sqrt(0.1)), sqrt(sim1_vi)), 4)
d_sim1 <- list(yi=jarr(sim1_yi), vi=jarr(sim1_vi))

## sim2: continuous arm data, k = 20, true SMD ~ N(0.4, 0.2^2)
sim2_n1 <- sample(15:120, 20, replace=TRUE)
sim2_n2 <- sample(15:120, 20, replace=TRUE)
sim2_sd <- runif(20, 8, 15)
sim2_delta <- rnorm(20, 0.4, 0.2)
sim2_mu <- 50 + rnorm(20, 0, 5)   # study-specific control mean
sim2_m2 <- round(sim2_mu + rnorm(20, 0, sim2_sd / sqrt(sim2_n2)), 2)
sim2_m1 <- round(sim2_mu + sim2_delta * sim2_sd + rnorm(20, 0, sim2_sd / sqrt(sim2_n1)), 2)
sim2_sd1 <- round(sim2_sd * sqrt(rchisq(20, sim2_n1 - 1) / (sim2_n1 - 1)), 2)
sim2_sd2 <- round(sim2_sd * sqrt(rchisq(20, sim2_n2 - 1) / (sim2_n2 - 1)), 2)
d_sim2 <- list(m1i=jarr(sim2_m1), sd1i=jarr(sim2_sd1), n1i=jarr(as.numeric(sim2_n1)),
               m2i=jarr(sim2_m2), sd2i=jarr(sim2_sd2), n2i=jarr(as.numeric(sim2_n2)))

## yi/vi for the rma cases, via escalc (the escalc cases pin these too)
esc_call <- function(measure, d, argstr="") {
   cols <- names(d)
   paste0("escalc(measure=", q(measure), ", ", paste0(cols, "=", cols, collapse=", "), ", data=dat", argstr, ")")
}
yv <- function(measure, d) {
   e <- run_code(esc_call(measure, d), d)$value
   list(yi=jarr(as.numeric(e$yi)), vi=jarr(as.numeric(e$vi)))
}
yv_normand_MD <- yv("MD", d_normand)
yv_bcg_RR     <- yv("RR", d_bcg)
yv_bcg_OR     <- yv("OR", d_bcg)
yv_sim2_SMD   <- yv("SMD", d_sim2)
sub_yv <- function(d, idx) list(yi=jarr(as.numeric(d$yi[idx])), vi=jarr(as.numeric(d$vi[idx])))

datasets <- list(
   list(name="normand1999-MD",  src="dat.normand1999, escalc MD", d=yv_normand_MD),
   list(name="bcg-logRR",       src="dat.bcg, escalc RR (log)", d=yv_bcg_RR),
   list(name="bcg-logOR",       src="dat.bcg, escalc OR (log)", d=yv_bcg_OR),
   list(name="sim1-k20",        src="simulated yi/vi, k=20, mu=0.3, tau2=0.1 (see script)", d=d_sim1),
   list(name="sim2-SMD-k20",    src="simulated arm data, escalc SMD, k=20 (see script)", d=yv_sim2_SMD),
   list(name="k2-bcg4_8-logRR", src="dat.bcg trials 4 and 8, escalc RR (log)", d=sub_yv(yv_bcg_RR, c(4, 8))),
   list(name="k3-normand1_3-MD", src="dat.normand1999 studies 1-3, escalc MD", d=sub_yv(yv_normand_MD, 1:3)),
   list(name="homog-k6",        src="hand-made homogeneous yi/vi (tau2 at the 0 boundary)",
        d=list(yi=jarr(c(0.10, 0.12, 0.09, 0.11, 0.105, 0.095)),
               vi=jarr(c(0.010, 0.020, 0.015, 0.012, 0.030, 0.025))))
)
get_ds <- function(name) Filter(function(z) z$name == name, datasets)[[1]]

############################################################################
### output extractors

is_fe <- function(res) is.element(res$method, c("FE", "EE", "CE"))

fit_stats <- function(res) {
   fs <- res$fit.stats
   fs[!is.finite(as.matrix(fs))] <- NA   # e.g. AICc/BIC with k = 1
   list(ML=setNames(as.list(num(fs[, "ML"])), c("ll", "dev", "AIC", "BIC", "AICc")),
        REML=setNames(as.list(num(fs[, "REML"])), c("ll", "dev", "AIC", "BIC", "AICc")))
}

tau2_confint <- function(res, sink) {
   if (is_fe(res)) return(NULL)
   ci <- tryCatch(quietly(confint(res, control=ci_ctrl), sink)$random, error=function(e) e)
   if (inherits(ci, "error")) {
      assign("w", c(get("w", envir=sink), paste("confint() failed:", conditionMessage(ci))), envir=sink)
      return(NULL)
   }
   list(tau2_ci=vec(ci["tau^2", c("ci.lb", "ci.ub")]),
        tau_ci=vec(ci["tau", c("ci.lb", "ci.ub")]),
        I2_ci=vec(ci["I^2(%)", c("ci.lb", "ci.ub")]),
        H2_ci=vec(ci["H^2", c("ci.lb", "ci.ub")]))
}

POST_RMA <- paste0("predict(res); confint(res, control=", CI_CTRL, "); weights(res)")

## intercept-only rma.uni fit -> engine vocabulary
rma_out <- function(res, sink) {
   k <- res$k
   pr <- quietly(predict(res), sink)
   ci <- tau2_confint(res, sink)
   est <- num(res$beta); se <- num(res$se); tau2 <- num(res$tau2)
   alpha <- res$level   # metafor stores the level as alpha (0.05 for level=95)
   stopifnot(alpha > 0, alpha < 0.5)
   tk2 <- if (k >= 3) est + c(-1, 1) * qt(1 - alpha / 2, df=k - 2) * sqrt(tau2 + se^2) else c(NA, NA)
   list(
      estimate=est, se=se, stat=num(res$zval), pval=num(res$pval),
      ci_lb=num(res$ci.lb), ci_ub=num(res$ci.ub),
      df=if (res$test == "z") NA_real_ else num(res$ddf),
      tau2=tau2, tau2_se=num(res$se.tau2),
      tau2_ci=ci$tau2_ci, tau_ci=ci$tau_ci, I2_ci=ci$I2_ci, H2_ci=ci$H2_ci,
      I2=num(res$I2), H2=num(res$H2),
      Q=num(res$QE), Q_df=k - res$p, Q_p=num(res$QEp),
      pi_lb=num(pr$pi.lb), pi_ub=num(pr$pi.ub), pred_se=num(pr$se),
      pi_lb_tk2=tk2[1], pi_ub_tk2=tk2[2],
      weights=vec(weights(res)),
      k=k, converged=TRUE,
      vb=num(res$vb), s2w=num(res$s2w), vt=num(res$vt),
      fit_stats=fit_stats(res))
}

## meta-regression fit -> engine vocabulary
metareg_out <- function(res, sink) {
   k <- res$k; p <- res$p
   ci <- tau2_confint(res, sink)
   knha <- res$test != "z"
   list(
      coef_names=jarr(rownames(res$beta)),
      beta=vec(res$beta), se=vec(res$se), stat=vec(res$zval), pval=vec(res$pval),
      ci_lb=vec(res$ci.lb), ci_ub=vec(res$ci.ub),
      df=if (knha) num(res$ddf) else NA_real_,
      vb=unname(res$vb),
      tau2=num(res$tau2), tau2_se=num(res$se.tau2),
      tau2_ci=ci$tau2_ci, I2=num(res$I2), H2=num(res$H2), R2=num(res$R2),
      QE=num(res$QE), QE_df=k - p, QE_p=num(res$QEp),
      QM=num(res$QM), QM_df=if (knha) vec(res$QMdf) else num(res$QMdf[1]), QM_p=num(res$QMp),
      k=k, p=p, s2w=num(res$s2w), weights=vec(weights(res)),
      fit_stats=fit_stats(res))
}

rma_call <- function(method, test, extra="") {
   paste0("res <- rma(yi, vi, data=dat", extra, ", method=", q(method), ", test=", q(test),
          ", control=", CTRL, ")")
}

############################################################################
### escalc

escalc_cases <- list()
add_escalc <- function(id, measure, d, src, argstr="", args_extra=list()) {
   call <- esc_call(measure, d, argstr)
   r <- run_code(call, d)
   escalc_cases[[length(escalc_cases) + 1]] <<- case(
      id=id, call=call, input=d,
      args=c(list(measure=measure, dataset=src), args_extra),
      output=list(yi=vec(r$value$yi), vi=vec(r$value$vi)),
      warnings=r$warnings)
}
add_escalc("normand1999-MD", "MD", d_normand, "dat.normand1999")
add_escalc("normand1999-SMD", "SMD", d_normand, "dat.normand1999", args_extra=list(vtype="LS"))
add_escalc("sim2-MD", "MD", d_sim2, "simulated (sim2)")
add_escalc("sim2-SMD", "SMD", d_sim2, "simulated (sim2)", args_extra=list(vtype="LS"))
for (m in c("RR", "OR", "RD")) {
   add_escalc(paste0("bcg-", m), m, d_bcg, "dat.bcg (ai=tpos, bi=tneg, ci=cpos, di=cneg)")
   add_escalc(paste0("zerocells-", m), m, d_zero, "hand-made zero cells (study 4 is a double zero)",
              args_extra=list(add=0.5, to="only0", drop00=FALSE))
   add_escalc(paste0("nielweise2007-", m), m, d_niel, "dat.nielweise2007 (study 15 is a double zero)",
              args_extra=list(add=0.5, to="only0", drop00=FALSE))
}
## non-default zero-cell handling, for the record
add_escalc("zerocells-OR-to_all", "OR", d_zero, "hand-made zero cells", ", to=\"all\"",
           list(add=0.5, to="all", drop00=FALSE))
add_escalc("zerocells-OR-to_if0all", "OR", d_zero, "hand-made zero cells", ", to=\"if0all\"",
           list(add=0.5, to="if0all", drop00=FALSE))
add_escalc("zerocells-OR-drop00", "OR", d_zero, "hand-made zero cells", ", drop00=TRUE",
           list(add=0.5, to="only0", drop00=TRUE))
add_escalc("zerocells-RR-drop00", "RR", d_zero, "hand-made zero cells", ", drop00=TRUE",
           list(add=0.5, to="only0", drop00=TRUE))
add_escalc("zerocells-RD-drop00", "RD", d_zero, "hand-made zero cells", ", drop00=TRUE",
           list(add=0.5, to="only0", drop00=TRUE))

############################################################################
### rma: every method x test

rma_cases <- list()
add_rma <- function(ds, method, test, extra_ctrl=NULL) {
   call <- rma_call(method, test)
   id <- paste(ds$name, method, test, sep="-")
   sink <- new.env(); sink$w <- character(0)
   r <- tryCatch(run_code(call, ds$d), error=function(e) e)
   if (inherits(r, "error")) {
      out <- list(converged=FALSE, error=conditionMessage(r), k=length(ds$d$yi))
      w <- character(0)
   } else {
      out <- rma_out(r$value, sink)
      w <- c(r$warnings, sink$w)
   }
   rma_cases[[length(rma_cases) + 1]] <<- case(
      id=id, call=call, input=ds$d,
      args=list(method=method, test=test, level=95, dataset=ds$src, post=POST_RMA),
      output=out, warnings=w)
}
METHODS <- c("DL", "REML", "ML", "PM", "HE", "SJ", "EB", "FE")
for (ds in datasets) {
   for (method in METHODS) for (test in c("z", "knha")) add_rma(ds, method, test)
   for (method in c("DL", "REML")) add_rma(ds, method, "adhoc")
}

############################################################################
### Mantel-Haenszel and Peto

mh_out <- function(res) {
   list(estimate=num(res$beta), se=num(res$se), stat=num(res$zval), pval=num(res$pval),
        ci_lb=num(res$ci.lb), ci_ub=num(res$ci.ub),
        Q=num(res$QE), Q_df=res$k.yi - 1, Q_p=num(res$QEp), I2=num(res$I2), H2=num(res$H2),
        k=res$k, k_yi=res$k.yi, k_pos=num(res$k.pos),
        MH=num(res$MH), MHp=num(res$MHp), CO=num(res$CO), COp=num(res$COp),
        TA=num(res$TA), TAp=num(res$TAp), TA_df=num(res$k.pos) - 1,
        BD=num(res$BD), BDp=num(res$BDp),
        weights=vec(weights(res)))
}
mh_cases <- list()
add_mh <- function(id, fun, measure, d, src, argstr="", args_extra=list()) {
   cols <- names(d)
   call <- paste0(fun, "(", paste0(cols, "=", cols, collapse=", "), ", data=dat",
                  if (fun == "rma.mh") paste0(", measure=", q(measure)) else "", argstr, ")")
   r <- run_code(call, d)
   mh_cases[[length(mh_cases) + 1]] <<- case(
      id=id, call=call, input=d,
      args=modifyList(c(list(fun=fun, measure=measure, dataset=src, add=0.5, to="only0", drop00=TRUE),
                        if (fun == "rma.mh") list(correct=TRUE)), args_extra),
      output=mh_out(r$value), warnings=r$warnings,
      notes=paste("estimate/ci are on the log scale for RR and OR.",
                  "MH/MHp: Mantel-Haenszel (CMH) test, variance with N-1;",
                  "CO/COp: Cochran's version, variance with N; both continuity-corrected when correct=TRUE.",
                  "TA/TAp: Tarone's test (df = k_pos - 1); BD/BDp: Breslow-Day."))
}
for (m in c("RR", "OR", "RD")) {
   add_mh(paste0("bcg-MH-", m), "rma.mh", m, d_bcg, "dat.bcg")
   add_mh(paste0("nielweise2007-MH-", m), "rma.mh", m, d_niel, "dat.nielweise2007 (sparse, one double zero)")
}
add_mh("bcg-MH-OR-nocorrect", "rma.mh", "OR", d_bcg, "dat.bcg", ", correct=FALSE", list(correct=FALSE))
add_mh("nielweise2007-MH-OR-nocorrect", "rma.mh", "OR", d_niel, "dat.nielweise2007", ", correct=FALSE", list(correct=FALSE))
add_mh("bcg-Peto-OR", "rma.peto", "PETO", d_bcg, "dat.bcg")
add_mh("nielweise2007-Peto-OR", "rma.peto", "PETO", d_niel, "dat.nielweise2007 (sparse, one double zero)")

############################################################################
### subgroups

sub_cases <- list()
bcg_sub_input <- function(idx) list(yi=jarr(yv_bcg_RR$yi[idx]), vi=jarr(yv_bcg_RR$vi[idx]),
                                    alloc=jarr(bcg_alloc[idx]))

add_sub_separate <- function(id, input, method, src) {
   levs <- sort(unique(as.character(input$alloc)))
   fit1 <- function(g) paste0("rma(yi, vi, data=dat[dat$alloc == ", q(g), ", ], method=", q(method),
                              ", test=\"z\", control=", CTRL, ")")
   call <- paste0(
      "levs <- sort(unique(dat$alloc))\n",
      "fits <- lapply(levs, function(g) rma(yi, vi, data=dat[dat$alloc == g, ], method=", q(method),
      ", test=\"z\", control=", CTRL, "))\n",
      "rma(yi=sapply(fits, coef), sei=sapply(fits, function(f) f$se), method=\"FE\")")
   r <- run_code(call, input)
   fits <- r$env$fits
   sink <- new.env(); sink$w <- character(0)
   lev_out <- lapply(seq_along(levs), function(i) {
      o <- rma_out(fits[[i]], sink)
      c(list(level=levs[i], call=fit1(levs[i])), o)
   })
   bt <- r$value
   sub_cases[[length(sub_cases) + 1]] <<- case(
      id=id, call=call, input=input,
      args=list(kind="separate_tau2", method=method, test="z", group="alloc", dataset=src,
                between="rma(yi=level estimates, sei=level SEs, method=\"FE\")"),
      output=list(levels=jarr(levs), fits=lev_out,
                  estimates=vec(sapply(fits, coef)), ses=vec(sapply(fits, function(f) f$se)),
                  Q_between=num(bt$QE), Q_between_df=bt$k - 1, Q_between_p=num(bt$QEp)),
      warnings=c(r$warnings, sink$w))
}

add_sub_common <- function(id, input, method, test, src) {
   call <- paste0("res <- rma(yi, vi, mods=~factor(alloc), data=dat, method=", q(method),
                  ", test=", q(test), ", control=", CTRL, ")\n",
                  "res0 <- rma(yi, vi, mods=~factor(alloc)-1, data=dat, method=", q(method),
                  ", test=", q(test), ", control=", CTRL, ")")
   r <- run_code(call, input)
   res <- r$env$res; res0 <- r$env$res0
   sink <- new.env(); sink$w <- character(0)
   o <- metareg_out(res, sink)
   o$level_estimates <- vec(res0$beta); o$level_ses <- vec(res0$se)
   o$level_ci_lb <- vec(res0$ci.lb); o$level_ci_ub <- vec(res0$ci.ub)
   o$levels <- jarr(sort(unique(as.character(input$alloc))))
   o$QM_all <- num(res0$QM)      # test of all level means = 0 (no intercept)
   sub_cases[[length(sub_cases) + 1]] <<- case(
      id=id, call=call, input=input,
      args=list(kind="common_tau2", method=method, test=test, group="alloc", dataset=src),
      output=o, warnings=c(r$warnings, sink$w),
      notes="QM/QM_df/QM_p: test for subgroup differences (res). level_*: the no-intercept parametrisation (res0).")
}

in_all <- bcg_sub_input(1:13)
in_single <- bcg_sub_input(setdiff(1:13, 6))   # without trial 6, 'alternate' has one study (trial 5)
for (method in c("REML", "DL")) {
   add_sub_separate(paste0("bcg-logRR-alloc-separate-", method), in_all, method, "dat.bcg, logRR, by alloc")
   add_sub_separate(paste0("bcg-no6-logRR-alloc-separate-", method), in_single, method,
                    "dat.bcg without trial 6, logRR, by alloc (alternate has k=1)")
   for (test in c("z", "knha")) {
      add_sub_common(paste0("bcg-logRR-alloc-common-", method, "-", test), in_all, method, test,
                     "dat.bcg, logRR, by alloc")
      add_sub_common(paste0("bcg-no6-logRR-alloc-common-", method, "-", test), in_single, method, test,
                     "dat.bcg without trial 6, logRR, by alloc (alternate has k=1)")
   }
}

############################################################################
### meta-regression

metareg_cases <- list()
add_metareg <- function(id, input, mods, method, test, src) {
   call <- paste0("res <- rma(yi, vi, mods=", mods, ", data=dat, method=", q(method),
                  ", test=", q(test), ", control=", CTRL, ")")
   r <- run_code(call, input)
   sink <- new.env(); sink$w <- character(0)
   metareg_cases[[length(metareg_cases) + 1]] <<- case(
      id=id, call=call, input=input,
      args=list(mods=mods, method=method, test=test, dataset=src,
                post=paste0("confint(res, control=", CI_CTRL, "); weights(res)")),
      output=metareg_out(r$value, sink), warnings=c(r$warnings, sink$w))
}
for (method in c("REML", "DL")) for (test in c("z", "knha")) {
   add_metareg(paste0("bcg-logRR-ablat-", method, "-", test),
               c(yv_bcg_RR, list(mods=list(ablat=bcg_mods$ablat))), "~ablat", method, test, "dat.bcg, logRR")
   add_metareg(paste0("bcg-logRR-ablat_year-", method, "-", test),
               c(yv_bcg_RR, list(mods=bcg_mods)), "~ablat + year", method, test, "dat.bcg, logRR")
}
add_metareg("bcg-logRR-ablat-FE-z", c(yv_bcg_RR, list(mods=list(ablat=bcg_mods$ablat))), "~ablat", "FE", "z",
            "dat.bcg, logRR")
add_metareg("bcg-logRR-ablat-ML-z", c(yv_bcg_RR, list(mods=list(ablat=bcg_mods$ablat))), "~ablat", "ML", "z",
            "dat.bcg, logRR")

############################################################################
### small-study tests: regtest (Egger), ranktest, trimfill

regtest_cases <- list()
add_regtest <- function(id, ds, method, test, model) {
   call <- paste0(rma_call(method, test), "\nregtest(res",
                  if (model == "lm") ", model=\"lm\"" else "", ", ret.fit=TRUE)")
   r <- run_code(call, ds$d)
   rt <- r$value
   has_df <- !is.na(rt$dfs)
   fit <- rt$fit
   fo <- if (model == "lm") {
      cf <- coef(summary(fit))
      list(fit_coef_names=jarr(rownames(cf)), fit_beta=vec(cf[, 1]), fit_se=vec(cf[, 2]),
           fit_sigma=num(summary(fit)$sigma))
   } else {
      list(fit_coef_names=jarr(rownames(fit$beta)), fit_beta=vec(fit$beta), fit_se=vec(fit$se),
           fit_tau2=num(fit$tau2))
   }
   o <- list(model=model, predictor=rt$predictor)
   o[[if (has_df) "tval" else "zval"]] <- num(rt$zval)
   o <- c(o, list(stat=num(rt$zval), pval=num(rt$pval), df=num(rt$dfs),
                  est=num(rt$est), ci_lb=num(rt$ci.lb), ci_ub=num(rt$ci.ub)), fo)
   regtest_cases[[length(regtest_cases) + 1]] <<- case(
      id=id, call=call, input=ds$d,
      args=list(method=method, test=test, model=model, predictor="sei", dataset=ds$src),
      output=o, warnings=r$warnings,
      notes="est/ci_lb/ci_ub: the limit estimate (intercept of the regression on sei, i.e. the estimate as sei -> 0).")
}
for (spec in list(c("bcg-logRR", "REML", "z"), c("bcg-logRR", "FE", "z"), c("bcg-logRR", "REML", "knha"),
                  c("bcg-logRR", "DL", "z"), c("normand1999-MD", "REML", "z"), c("sim1-k20", "REML", "z"))) {
   ds <- get_ds(spec[1])
   for (model in c("rma", "lm"))
      add_regtest(paste(spec[1], spec[2], spec[3], "regtest", model, sep="-"), ds, spec[2], spec[3], model)
}

ranktest_cases <- list()
add_ranktest <- function(id, ds, method) {
   call <- paste0(rma_call(method, "z"), "\nranktest(res)")
   r <- run_code(call, ds$d)
   ranktest_cases[[length(ranktest_cases) + 1]] <<- case(
      id=id, call=call, input=ds$d, args=list(method=method, dataset=ds$src),
      output=list(tau=num(r$value$tau), pval=num(r$value$pval)), warnings=r$warnings,
      notes="Kendall's tau between standardised deviates and vi; cor.test(exact=TRUE) (falls back to the normal approximation when there are ties).")
}
ds_hack <- list(name="hackshaw1998-logOR", src="dat.hackshaw1998 (yi, vi as given)", d=d_hack)
add_ranktest("bcg-logRR-REML-ranktest", get_ds("bcg-logRR"), "REML")
add_ranktest("bcg-logRR-FE-ranktest", get_ds("bcg-logRR"), "FE")
add_ranktest("normand1999-MD-REML-ranktest", get_ds("normand1999-MD"), "REML")
add_ranktest("hackshaw1998-logOR-FE-ranktest", ds_hack, "FE")
add_ranktest("sim1-k20-REML-ranktest", get_ds("sim1-k20"), "REML")

trimfill_cases <- list()
add_trimfill <- function(id, ds, method, estimator) {
   call <- paste0(rma_call(method, "z"), "\ntrimfill(res, estimator=", q(estimator), ", control=", CTRL, ")")
   r <- run_code(call, ds$d)
   tf <- r$value
   sink <- new.env(); sink$w <- character(0)
   fill <- tf$fill
   trimfill_cases[[length(trimfill_cases) + 1]] <<- case(
      id=id, call=call, input=ds$d, args=list(method=method, estimator=estimator, side="auto", dataset=ds$src),
      output=list(k0=num(tf$k0), side=tf$side, se_k0=num(tf$se.k0), p_k0=num(tf$p.k0),
                  estimate=num(tf$beta), se=num(tf$se), stat=num(tf$zval), pval=num(tf$pval),
                  ci_lb=num(tf$ci.lb), ci_ub=num(tf$ci.ub), tau2=num(tf$tau2),
                  I2=num(tf$I2), H2=num(tf$H2), Q=num(tf$QE), Q_p=num(tf$QEp), k=tf$k,
                  fill_yi=vec(tf$yi[fill]), fill_vi=vec(tf$vi[fill]),
                  all_yi=vec(tf$yi), all_vi=vec(tf$vi), fill=jarr(as.logical(fill))),
      warnings=c(r$warnings, sink$w),
      notes="fill_yi/fill_vi: the imputed studies (res$fill TRUE); all_yi/all_vi: observed then imputed. p_k0 is only defined for R0.")
}
add_trimfill("bcg-logRR-REML-trimfill-L0", get_ds("bcg-logRR"), "REML", "L0")
add_trimfill("bcg-logRR-FE-trimfill-L0", get_ds("bcg-logRR"), "FE", "L0")
add_trimfill("bcg-logRR-REML-trimfill-R0", get_ds("bcg-logRR"), "REML", "R0")
add_trimfill("hackshaw1998-logOR-FE-trimfill-L0", ds_hack, "FE", "L0")
add_trimfill("hackshaw1998-logOR-FE-trimfill-R0", ds_hack, "FE", "R0")
add_trimfill("hackshaw1998-logOR-REML-trimfill-L0", ds_hack, "REML", "L0")
add_trimfill("sim1-k20-REML-trimfill-L0", get_ds("sim1-k20"), "REML", "L0")

############################################################################
### leave-one-out, influence, cumulative

l1o_cases <- list()
add_l1o <- function(id, ds, method, test) {
   call <- paste0(rma_call(method, test), "\nleave1out(res)")
   r <- run_code(call, ds$d)
   l <- r$value
   l1o_cases[[length(l1o_cases) + 1]] <<- case(
      id=id, call=call, input=ds$d, args=list(method=method, test=test, dataset=ds$src),
      output=list(estimate=vec(l$estimate), se=vec(l$se), stat=vec(l$zval), pval=vec(l$pval),
                  ci_lb=vec(l$ci.lb), ci_ub=vec(l$ci.ub), Q=vec(l$Q), Q_p=vec(l$Qp),
                  tau2=vec(l$tau2), I2=vec(l$I2), H2=vec(l$H2)),
      warnings=r$warnings, notes="element i: the fit without study i")
}
add_l1o("bcg-logRR-REML-z-leave1out", get_ds("bcg-logRR"), "REML", "z")
add_l1o("bcg-logRR-DL-z-leave1out", get_ds("bcg-logRR"), "DL", "z")
add_l1o("bcg-logRR-REML-knha-leave1out", get_ds("bcg-logRR"), "REML", "knha")
add_l1o("normand1999-MD-DL-z-leave1out", get_ds("normand1999-MD"), "DL", "z")

infl_cases <- list()
add_infl <- function(id, input, method, src, mods=NULL) {
   fitcall <- if (is.null(mods)) rma_call(method, "z") else
      paste0("res <- rma(yi, vi, mods=", mods, ", data=dat, method=", q(method), ", test=\"z\", control=", CTRL, ")")
   call <- paste0(fitcall, "\ninf <- influence(res)\nrs <- rstudent(res)\nrst <- rstandard(res)")
   r <- run_code(call, input)
   inf <- r$env$inf; rs <- r$env$rs; rst <- r$env$rst
   dfbs <- as.list(as.data.frame(inf$dfbs))
   infl_cases[[length(infl_cases) + 1]] <<- case(
      id=id, call=call, input=input, args=list(method=method, test="z", mods=mods, dataset=src),
      output=list(rstudent=vec(inf$inf$rstudent), dffits=vec(inf$inf$dffits), cook_d=vec(inf$inf$cook.d),
                  cov_r=vec(inf$inf$cov.r), tau2_del=vec(inf$inf$tau2.del), QE_del=vec(inf$inf$QE.del),
                  hat=vec(inf$inf$hat), weight=vec(inf$inf$weight),
                  dfbetas=lapply(dfbs, vec), inf=jarr(as.logical(inf$is.infl)),
                  rstudent_resid=vec(rs$resid), rstudent_se=vec(rs$se), rstudent_z=vec(rs$z),
                  rstandard_resid=vec(rst$resid), rstandard_se=vec(rst$se), rstandard_z=vec(rst$z)),
      warnings=r$warnings,
      notes="weight is in percent; dfbetas is a dict by coefficient name; inf: metafor's is.infl flags.")
}
add_infl("bcg-logRR-REML-influence", yv_bcg_RR, "REML", "dat.bcg, logRR")
add_infl("normand1999-MD-DL-influence", yv_normand_MD, "DL", "dat.normand1999, MD")
add_infl("bcg-logRR-ablat-REML-influence", c(yv_bcg_RR, list(mods=list(ablat=bcg_mods$ablat))), "REML",
         "dat.bcg, logRR", mods="~ablat")

cumul_cases <- list()
add_cumul <- function(id, method) {
   input <- c(yv_bcg_RR, list(year=bcg_mods$year))
   call <- paste0(rma_call(method, "z"), "\ncumul(res, order=dat$year)")
   r <- run_code(call, input)
   cu <- r$value
   cumul_cases[[length(cumul_cases) + 1]] <<- case(
      id=id, call=call, input=input, args=list(method=method, test="z", order="year", dataset="dat.bcg, logRR"),
      output=list(order=vec(cu$slab), estimate=vec(cu$estimate), se=vec(cu$se), stat=vec(cu$zval),
                  pval=vec(cu$pvals), ci_lb=vec(cu$ci.lb), ci_ub=vec(cu$ci.ub),
                  Q=vec(cu$Q), Q_p=vec(cu$Qp), tau2=vec(cu$tau2), I2=vec(cu$I2), H2=vec(cu$H2)),
      warnings=r$warnings,
      notes=paste("metafor 3.8-1: cumul(order=) takes the sort variable (it calls order() itself; ties keep input order).",
                  "order: the 1-based study indices in cumulative order; row j is the fit of the first j of them."))
}
add_cumul("bcg-logRR-REML-cumul-year", "REML")
add_cumul("bcg-logRR-DL-cumul-year", "DL")
add_cumul("bcg-logRR-FE-cumul-year", "FE")

############################################################################
### GOSH (all subsets of a k=6 subset of bcg)

gosh_cases <- list()
add_gosh <- function(id, method) {
   input <- sub_yv(yv_bcg_RR, 1:6)
   call <- paste0(rma_call(method, "z"), "\ngosh(res, progbar=FALSE)")
   r <- run_code(call, input)
   g <- r$value
   pat <- apply(g$incl, 1, function(z) paste(as.integer(z), collapse=""))
   estcol <- setdiff(colnames(g$res), c("k", "QE", "I2", "H2", "tau2"))
   gosh_cases[[length(gosh_cases) + 1]] <<- case(
      id=id, call=call, input=input, args=list(method=method, subsets="all (2^6 - 1 = 63)", dataset="dat.bcg trials 1-6, logRR"),
      output=list(incl=jarr(unname(pat)), k=vec(g$res$k), estimate=vec(g$res[[estcol[1]]]),
                  I2=vec(g$res$I2), H2=vec(g$res$H2), tau2=vec(g$res$tau2), Q=vec(g$res$QE)),
      warnings=r$warnings,
      notes="incl: one string per subset, character j is 1 when study j is included (metafor's row order).")
}
add_gosh("bcg1_6-logRR-FE-gosh", "FE")
add_gosh("bcg1_6-logRR-REML-gosh", "REML")

############################################################################
### exact permutation tests

perm_cases <- list()
add_perm <- function(id, idx, mods, method) {
   input <- sub_yv(yv_bcg_RR, idx)
   if (!is.null(mods)) input$mods <- list(ablat=jarr(bcg_mods$ablat[idx]))
   fitcall <- if (is.null(mods)) rma_call(method, "z") else
      paste0("res <- rma(yi, vi, mods=", mods, ", data=dat, method=", q(method), ", test=\"z\", control=", CTRL, ")")
   call <- paste0(fitcall, "\npermutest(res, exact=TRUE, progbar=FALSE)")
   r <- run_code(call, input)
   p <- r$value
   perm_cases[[length(perm_cases) + 1]] <<- case(
      id=id, call=call, input=input,
      args=list(method=method, test="z", mods=mods, exact=TRUE, dataset=paste0("dat.bcg trials ", min(idx), "-", max(idx), ", logRR")),
      output=list(coef_names=jarr(rownames(p$beta)), beta=vec(p$beta), stat=vec(p$zval),
                  pval=vec(p$pval), QM=num(p$QM), QMp=num(p$QMp), n_perm=num(p$exact.iter)),
      warnings=r$warnings,
      notes=paste("Intercept-only: all 2^k sign flips; with moderators: all distinct row permutations of X.",
                  "metafor counts |z_perm| >= |z_obs| - comptol and QM_perm >= QM_obs - comptol, comptol = sqrt(.Machine$double.eps)."))
}
add_perm("bcg1_8-logRR-REML-permutest-exact", 1:8, NULL, "REML")
add_perm("bcg1_8-logRR-DL-permutest-exact", 1:8, NULL, "DL")
add_perm("bcg1_7-logRR-ablat-REML-permutest-exact", 1:7, "~ablat", "REML")

############################################################################
### write

prov <- list(
   r_version=R.version.string,
   metafor_version=as.character(packageVersion("metafor")),
   metadat_version=as.character(packageVersion("metadat")),
   jsonlite_version=as.character(packageVersion("jsonlite")),
   script=SCRIPT,
   rng=jarr(RNGkind()), seed=20240229,
   control=list(rma=CTRL, confint=CI_CTRL,
                note="Converged settings: metafor's defaults (threshold=1e-5, tol=eps^0.25, confint tau2.max=max(100, 10*tau2)) stop early."),
   number_format="sprintf('%.17g') (integers as integers); NA/NaN -> null",
   level=95,
   not_available=jarr(c(
      "conv.wald(), conv.fivenum(), conv.delta(): not in metafor 3.8-1 (added in metafor 4.0); no conv cases.")),
   generated="see tests/reference/README.md (no time stamp here, so the file is byte-stable)")

ref <- list(
   provenance=prov,
   escalc=escalc_cases, rma=rma_cases, mh=mh_cases, subgroup=sub_cases, metareg=metareg_cases,
   regtest=regtest_cases, ranktest=ranktest_cases, trimfill=trimfill_cases,
   leave1out=l1o_cases, influence=infl_cases, cumul=cumul_cases, gosh=gosh_cases, permutest=perm_cases)

## every id unique
ids <- unlist(lapply(ref[-1], function(g) vapply(g, function(z) z$id, "")))
if (anyDuplicated(ids)) stop("duplicate ids: ", paste(ids[duplicated(ids)], collapse=", "))

txt <- to_json(ref)
con <- file(OUT, open="wb")
writeLines(txt, con, sep="\n", useBytes=TRUE)
close(con)
cat("wrote", OUT, ":", length(ids), "cases,", file.size(OUT), "bytes\n")
