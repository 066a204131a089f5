#!/usr/bin/env Rscript
### Pinned metafor reference values for the diagnostics and bias modules, and
### for REML convergence where metafor's default Fisher scoring fails.
###
### Writes tests/data/metafor_reference_diagnostics.json (run from the
### repository root: `Rscript --vanilla tests/reference/run_metafor_diagnostics.R`).
### It complements tests/data/metafor_reference.json (run_metafor.R), which
### covers leave1out/influence/cumul/gosh/permutest/trimfill for a few
### estimators; this file adds every tau2 estimator, knha, moderators,
### random-mode permutation tests (with the permutations metafor drew),
### ties in the rank test, the REML non-convergence cases, and REML
### likelihoods with a second (boundary) maximum. Takes about 30 s; a second
### run gives a byte-identical file.
###
### Same layout as metafor_reference.json: a provenance block, then groups of
### cases {id, call, input, args, output, warnings}. `call` is the R code run
### verbatim with `dat <- data.frame(<input columns>)`. Numbers are written
### with sprintf("%.17g") (exact round trip), NA as null; no time stamps, so
### the file is byte-stable.
###
### Converged settings throughout: control=list(threshold=1e-12, tol=1e-12,
### maxiter=10000). metafor's defaults (threshold=1e-5) stop early.

suppressPackageStartupMessages({
   library(metafor)
   library(metadat)
})

RNGkind("Mersenne-Twister", "Inversion", "Rejection")
SEED <- 20261124
set.seed(SEED)

OUT <- file.path("tests", "data", "metafor_reference_diagnostics.json")
CTRL <- "list(threshold=1e-12, tol=1e-12, maxiter=10000)"
METHODS <- c("FE", "DL", "HE", "SJ", "PM", "EB", "ML", "REML")

############################################################################
### JSON writer: %.17g round-trips every double (jsonlite keeps 15 digits)

jarr <- function(x) structure(x, class=c("jarr", class(x)))

fmt_num <- function(x) {
   if (is.na(x)) return("null")
   if (is.infinite(x)) stop("infinite value in output")
   if (x == 0) return("0")
   if (x == trunc(x) && abs(x) < 1e15) return(sprintf("%.0f", x))
   sprintf("%.17g", x)
}

fmt_str <- function(s) {
   if (is.na(s)) return("null")
   s <- gsub("\\", "\\\\", enc2utf8(s), fixed=TRUE)
   s <- gsub("\"", "\\\"", s, fixed=TRUE)
   s <- gsub("\n", "\\n", s, fixed=TRUE)
   paste0("\"", s, "\"")
}

fmt_atom <- function(x) {
   if (is.logical(x)) return(ifelse(is.na(x), "null", ifelse(x, "true", "false")))
   if (is.character(x) || is.factor(x)) return(vapply(as.character(x), fmt_str, ""))
   if (is.numeric(x)) return(vapply(as.numeric(x), fmt_num, ""))
   stop("unsupported type: ", class(x)[1])
}

to_json <- function(x, indent=0) {
   pad <- strrep("  ", indent); pad1 <- strrep("  ", indent + 1)
   if (is.null(x)) return("null")
   if (is.matrix(x)) return(to_json(lapply(seq_len(nrow(x)), function(i) jarr(unname(x[i, ]))), indent))
   if (is.list(x)) {
      if (!is.null(names(x))) {
         if (length(x) == 0) return("{}")
         items <- vapply(seq_along(x), function(i)
            paste0(pad1, fmt_str(names(x)[i]), ": ", to_json(x[[i]], indent + 1)), "")
         return(paste0("{\n", paste(items, collapse=",\n"), "\n", pad, "}"))
      }
      if (length(x) == 0) return("[]")
      items <- vapply(x, function(e) paste0(pad1, to_json(e, indent + 1)), "")
      return(paste0("[\n", paste(items, collapse=",\n"), "\n", pad, "]"))
   }
   v <- fmt_atom(unclass(x))
   if (length(x) == 1 && !inherits(x, "jarr")) return(unname(v))
   paste0("[", paste(v, collapse=", "), "]")
}

############################################################################
### running a case

run_code <- function(code, input) {
   env <- new.env(parent=as.environment("package:metafor"))
   cols <- list()
   for (nm in names(input)) {
      v <- input[[nm]]
      if (is.list(v)) { for (m in names(v)) cols[[m]] <- unclass(v[[m]]) } else cols[[nm]] <- unclass(v)
   }
   env$dat <- as.data.frame(cols, stringsAsFactors=FALSE)
   warns <- character(0)
   val <- withCallingHandlers({
      v <- NULL
      for (e in parse(text=code)) v <- eval(e, env)
      v
   }, warning=function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") })
   list(value=val, warnings=unique(warns), env=env)
}

case <- function(id, call, input, args, output, warnings=character(0), notes=NULL) {
   out <- list(id=id, call=call, input=input, args=args, output=output,
               warnings=jarr(as.character(unique(warnings))))
   if (!is.null(notes)) out$notes <- notes
   out
}

vec <- function(x) jarr(unname(as.numeric(x)))
q <- function(s) paste0("\"", s, "\"")
rma_call <- function(method, test="z", mods=NULL) {
   paste0("res <- rma(yi, vi", if (!is.null(mods)) paste0(", mods=", mods) else "",
          ", data=dat, method=", q(method), ", test=", q(test), ", control=", CTRL, ")")
}

############################################################################
### datasets

bcg <- escalc(measure="RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)
d_bcg <- list(yi=vec(bcg$yi), vi=vec(bcg$vi))
bcg_mods <- list(ablat=vec(dat.bcg$ablat), year=vec(dat.bcg$year))
d_hack <- list(yi=vec(dat.hackshaw1998$yi), vi=vec(dat.hackshaw1998$vi))
sub <- function(d, idx) lapply(d, function(v) if (is.list(v)) lapply(v, function(u) vec(u[idx])) else vec(v[idx]))

groups <- list()
add <- function(group, x) groups[[group]][[length(groups[[group]]) + 1]] <<- x

############################################################################
### REML where metafor's default Fisher scoring does not converge
###
### Design: k = 20, vi ~ U(0.01, 0.5), yi ~ N(0.3, vi + 0.05), drawn in this
### order from set.seed(20261124). About 1.8% of such datasets make the
### default rma(method="REML") stop with "Fisher scoring algorithm did not
### converge" (the step overshoots: observed information > 2x expected).
### We keep the first 8 that converge with stepadj=0.5 and pin the converged
### values (stepadj=0.5 plus the converged control).

CTRL_STEP <- "list(stepadj=0.5, threshold=1e-12, tol=1e-12, maxiter=10000)"
found <- 0; r <- 0
while (found < 8) {
   r <- r + 1
   vi <- runif(20, 0.01, 0.5)
   yi <- rnorm(20, 0.3, sqrt(vi + 0.05))
   d <- list(yi=vec(yi), vi=vec(vi))
   default <- tryCatch(run_code("rma(yi, vi, data=dat, method=\"REML\")", d), error=function(e) e)
   if (!inherits(default, "error")) next
   call <- paste0("res <- rma(yi, vi, data=dat, method=\"REML\", control=", CTRL_STEP, ")")
   fixed <- tryCatch(run_code(call, d), error=function(e) e)
   if (inherits(fixed, "error")) next
   res <- fixed$value
   found <- found + 1
   add("reml_nonconvergence", case(
      sprintf("sim-k20-draw%04d-REML", r), call, d,
      list(method="REML", draw=r, default_call="rma(yi, vi, data=dat, method=\"REML\")"),
      list(default_error=conditionMessage(default), tau2=res$tau2, estimate=c(res$beta),
           se=res$se, converged=TRUE),
      fixed$warnings,
      notes="metafor's default control fails (default_error); stepadj=0.5 with converged settings gives tau2."))
}

############################################################################
### REML likelihoods with a local maximum at tau2 = 0 and a higher one inside
###
### Same design, continuing the random stream. The REML score at tau2 = 0 is
### negative (a local maximum on the boundary) but metafor's converged tau2
### is positive with a higher restricted likelihood. A long Newton step from
### the HE start can fall into the boundary's basin; metafor's Fisher steps
### do not. First 4 such datasets with HE > 0.

reml_score0 <- function(yi, vi) {
   w <- 1 / vi; sw <- sum(w); r <- yi - sum(w * yi) / sw
   0.5 * (sum((w * r)^2) - (sw - sum(w^2) / sw))
}
found <- 0; r <- 0
while (found < 4) {
   r <- r + 1
   vi <- runif(20, 0.01, 0.5)
   yi <- rnorm(20, 0.3, sqrt(vi + 0.05))
   if (reml_score0(yi, vi) >= 0) next
   d <- list(yi=vec(yi), vi=vec(vi))
   call <- paste0("res <- rma(yi, vi, data=dat, method=\"REML\", control=", CTRL, ")")
   fitted <- tryCatch(run_code(call, d), error=function(e) NULL)
   if (is.null(fitted)) next
   res <- fitted$value
   he <- rma(yi, vi, method="HE")$tau2
   if (res$tau2 <= 0 || he <= 0) next
   ll0 <- c(logLik(rma(yi, vi, method="REML", tau2=0)))
   if (c(logLik(res)) <= ll0) next
   found <- found + 1
   add("reml_bimodal", case(sprintf("sim-k20-bimodal-draw%04d-REML", r), call, d,
      list(method="REML", draw=r),
      list(tau2=res$tau2, estimate=c(res$beta), se=res$se, ll=c(logLik(res)), ll_tau2_0=ll0,
           tau2_HE=he, score_at_0=reml_score0(yi, vi)),
      fitted$warnings,
      notes="The REML score at tau2 = 0 is negative (local maximum at 0), but the interior maximum is higher."))
}

############################################################################
### leave1out and cumul: every estimator, z and knha (bcg logRR)

for (m in METHODS) for (tst in c("z", "knha")) {
   call <- paste0(rma_call(m, tst), "\nleave1out(res)")
   out <- run_code(call, d_bcg); l <- out$value
   add("leave1out", case(paste0("bcg-logRR-", m, "-", tst, "-leave1out"), call, d_bcg,
      list(method=m, test=tst),
      list(estimate=vec(l$estimate), se=vec(l$se), stat=vec(if (tst == "z") l$zval else l$tval),
           pval=vec(l$pval), ci_lb=vec(l$ci.lb), ci_ub=vec(l$ci.ub), Q=vec(l$Q), Q_p=vec(l$Qp),
           tau2=vec(if (is.null(l$tau2)) rep(0, length(l$Q)) else l$tau2), I2=vec(l$I2), H2=vec(l$H2)),
      out$warnings))
}

d_bcg_year <- c(d_bcg, list(year=vec(dat.bcg$year)))
for (m in METHODS) {
   call <- paste0(rma_call(m, "knha"), "\ncumul(res, order=dat$year)")
   out <- run_code(call, d_bcg_year); l <- out$value
   ord <- order(dat.bcg$year)
   add("cumul", case(paste0("bcg-logRR-", m, "-knha-cumul-year"), call, d_bcg_year,
      list(method=m, test="knha", order="year"),
      list(order=vec(ord), estimate=vec(l$estimate), se=vec(l$se), stat=vec(l$tval),
           pval=vec(l$pval), ci_lb=vec(l$ci.lb), ci_ub=vec(l$ci.ub), Q=vec(l$Q), Q_p=vec(l$Qp),
           tau2=vec(if (is.null(l$tau2)) rep(0, length(l$Q)) else l$tau2), I2=vec(l$I2), H2=vec(l$H2)),
      out$warnings))
}

############################################################################
### influence: other estimators, knha, moderators

add_inf <- function(id, d, method, test, mods=NULL) {
   call <- paste0(rma_call(method, test, mods), "\ninf <- influence(res)")
   out <- run_code(call, d); inf <- out$value
   add("influence", case(id, call, d, list(method=method, test=test, mods=mods),
      list(rstudent=vec(inf$inf$rstudent), dffits=vec(inf$inf$dffits), cook_d=vec(inf$inf$cook.d),
           cov_r=vec(inf$inf$cov.r), tau2_del=vec(inf$inf$tau2.del), QE_del=vec(inf$inf$QE.del),
           hat=vec(inf$inf$hat), weight=vec(inf$inf$weight),
           dfbetas=lapply(unclass(inf$dfbs)[seq_len(inf$p)], vec), inf=jarr(as.logical(inf$is.infl))),
      out$warnings))
}
add_inf("bcg-logRR-REML-knha-influence", d_bcg, "REML", "knha")
add_inf("bcg-logRR-PM-z-influence", d_bcg, "PM", "z")
add_inf("bcg-logRR-ML-z-influence", d_bcg, "ML", "z")
add_inf("bcg-logRR-SJ-adhoc-influence", d_bcg, "SJ", "adhoc")
add_inf("bcg-logRR-ablat_year-DL-knha-influence", c(d_bcg, list(mods=bcg_mods)), "DL", "knha", "~ablat+year")
add_inf("hackshaw1998-logOR-EB-z-influence", d_hack, "EB", "z")
add_inf("bcg-logRR-FE-z-influence", d_bcg, "FE", "z")
add_inf("bcg-logRR-ablat-HE-z-influence", c(d_bcg, list(mods=list(ablat=bcg_mods$ablat))), "HE", "z", "~ablat")

############################################################################
### gosh: every estimator not in metafor_reference.json; and a moderator
### model where some subsets lose rank (NA rows)

d_bcg7 <- sub(d_bcg, 1:7)
for (m in c("DL", "HE", "SJ", "PM", "EB", "ML")) {
   call <- paste0(rma_call(m), "\ngosh(res, progbar=FALSE)")
   out <- run_code(call, d_bcg7); g <- out$value
   add("gosh", case(paste0("bcg1_7-logRR-", m, "-gosh"), call, d_bcg7,
      list(method=m, subsets="all (2^7 - 1 = 127)"),
      list(incl=jarr(apply(g$incl, 1, function(r) paste(as.integer(r), collapse=""))),
           k=vec(g$res$k), estimate=vec(g$res$estimate), I2=vec(g$res$I2), H2=vec(g$res$H2),
           tau2=vec(g$res$tau2), Q=vec(g$res$QE)),
      out$warnings))
}
d_bcg7m <- c(d_bcg7, list(mods=list(ablat=vec(dat.bcg$ablat[1:7]))))
call <- paste0(rma_call("REML", "z", "~ablat"), "\ngosh(res, progbar=FALSE)")
out <- run_code(call, d_bcg7m); g <- out$value
add("gosh", case("bcg1_7-logRR-ablat-REML-gosh", call, d_bcg7m,
   list(method="REML", mods="~ablat", subsets="all with k >= 2 (120)"),
   list(incl=jarr(apply(g$incl, 1, function(r) paste(as.integer(r), collapse=""))),
        k=vec(g$res$k), intrcpt=vec(g$res$intrcpt), ablat=vec(g$res$ablat), I2=vec(g$res$I2),
        H2=vec(g$res$H2), tau2=vec(g$res$tau2), Q=vec(g$res$QE), fit=jarr(as.logical(g$fit))),
   out$warnings, notes="Trials 1 and 6 share ablat = 44: the subset {1, 6} has a rank-deficient design (NA row, fit = false)."))

############################################################################
### permutest: random mode, with the permutations metafor drew
###
### permutest(res, iter=n, seed=s) calls set.seed(s) and then, per iteration,
### sample(c(-1, 1), k, replace=TRUE) (intercept-only) or sample(k) (rows of
### X sorted by do.call(order, X)). No fit consumes random numbers, so
### replaying those draws gives metafor's permutations. metafor replaces the
### first draw's statistics by the observed ones. `perms` are stored as
### metafor used them: signs, or 1-based rows of the original X.

add_perm_random <- function(id, d, method, test, mods, iter, seed) {
   call <- paste0(rma_call(method, test, mods), "\npermutest(res, iter=", iter, ", seed=", seed, ", progbar=FALSE)")
   out <- run_code(call, d); pt <- out$value; res <- out$env$res
   k <- res$k
   set.seed(seed)
   if (is.null(mods)) {
      perms <- t(replicate(iter, sample(c(-1, 1), k, replace=TRUE)))
   } else {
      ord <- do.call(order, as.data.frame(res$X))
      perms <- t(replicate(iter, ord[sample(k)]))
   }
   add("permutest", case(id, call, d, list(method=method, test=test, mods=mods, exact=FALSE, iter=iter, seed=seed),
      list(coef_names=jarr(rownames(res$beta)), beta=vec(res$beta), stat=vec(res$zval), pval=vec(pt$pval),
           QM=res$QM, QMp=pt$QMp, n_perm=iter, perms=perms),
      out$warnings,
      notes="perms: row r is draw r (signs for intercept-only; else 1-based rows of X paired with studies 1..k). The first row's statistics are replaced by the observed ones."))
}
add_perm_random("bcg-logRR-REML-z-permutest-random", d_bcg, "REML", "z", NULL, 1000, 1234)
add_perm_random("bcg-logRR-ablat_year-REML-z-permutest-random", c(d_bcg, list(mods=bcg_mods)), "REML", "z", "~ablat+year", 1000, 42)
add_perm_random("bcg-logRR-ablat-DL-knha-permutest-random", c(d_bcg, list(mods=list(ablat=bcg_mods$ablat))), "DL", "knha", "~ablat", 500, 7)

## exact, with a binary moderator: only distinct arrangements count
alloc_random <- as.numeric(dat.bcg$alloc == "random")
d_bin <- c(sub(d_bcg, 1:10), list(mods=list(random=vec(alloc_random[1:10]))))
call <- paste0(rma_call("PM", "knha", "~random"), "\npermutest(res, exact=TRUE, progbar=FALSE)")
out <- run_code(call, d_bin); pt <- out$value; res <- out$env$res
add("permutest", case("bcg1_10-logRR-random-PM-knha-permutest-exact", call, d_bin,
   list(method="PM", test="knha", mods="~random", exact=TRUE),
   list(coef_names=jarr(rownames(res$beta)), beta=vec(res$beta), stat=vec(res$zval), pval=vec(pt$pval),
        QM=res$QM, QMp=pt$QMp, n_perm=nrow(pt$zval.perm)),
   out$warnings))

############################################################################
### trimfill: explicit side, other estimators

add_tf <- function(id, d, method, estimator, side=NULL) {
   sidearg <- if (is.null(side)) "" else paste0(", side=", q(side))
   call <- paste0(rma_call(method), "\ntf <- trimfill(res, estimator=", q(estimator), sidearg, ", control=", CTRL, ")")
   out <- run_code(call, d); tf <- out$value
   add("trimfill", case(id, call, d, list(method=method, estimator=estimator, side=if (is.null(side)) "auto" else side),
      list(k0=tf$k0, side=tf$side, se_k0=tf$se.k0, p_k0=if (is.null(tf$p.k0)) NA else tf$p.k0,
           estimate=c(tf$beta), se=tf$se, stat=tf$zval, pval=tf$pval, ci_lb=tf$ci.lb, ci_ub=tf$ci.ub,
           tau2=tf$tau2, I2=tf$I2, H2=tf$H2, Q=tf$QE, Q_p=tf$QEp, k=tf$k,
           fill_yi=vec(tf$yi[tf$fill]), fill_vi=vec(tf$vi[tf$fill])),
      out$warnings))
}
add_tf("bcg-logRR-REML-trimfill-L0-left", d_bcg, "REML", "L0", "left")
add_tf("bcg-logRR-DL-trimfill-R0-left", d_bcg, "DL", "R0", "left")
add_tf("hackshaw1998-logOR-PM-trimfill-L0", d_hack, "PM", "L0")
add_tf("hackshaw1998-logOR-REML-trimfill-R0", d_hack, "REML", "R0")
add_tf("hackshaw1998-logOR-ML-trimfill-L0-right", d_hack, "ML", "L0", "right")

############################################################################
### ranktest: ties (normal approximation) and k >= 50 without ties (exact)

d_ties <- list(yi=vec(c(0.12, 0.45, -0.10, 0.33, 0.80, 0.05, 0.61, 0.27, 0.90, -0.22, 0.40, 0.15)),
               vi=vec(c(0.04, 0.09, 0.04, 0.06, 0.16, 0.02, 0.09, 0.06, 0.25, 0.02, 0.09, 0.04)))
sim60_vi <- round(runif(60, 0.01, 0.3), 6)
sim60_yi <- round(rnorm(60, 0.2 + 0.8 * sqrt(sim60_vi), sqrt(sim60_vi + 0.02)), 6)
d_sim60 <- list(yi=vec(sim60_yi), vi=vec(sim60_vi))
for (x in list(list(id="ties-k12-ranktest", d=d_ties), list(id="sim-k60-ranktest", d=d_sim60))) {
   call <- paste0(rma_call("REML"), "\nranktest(res)")
   out <- run_code(call, x$d)
   add("ranktest", case(x$id, call, x$d, list(method="REML"),
      list(tau=unname(out$value$tau), pval=out$value$pval), out$warnings))
}

############################################################################
### regtest: other predictors, moderators

d_bcg_n <- c(d_bcg, list(ni=vec(with(dat.bcg, tpos + tneg + cpos + cneg))))
add_reg <- function(id, d, method, test, model, predictor, mods=NULL, ni=FALSE) {
   call <- paste0(rma_call(method, test, mods), "\nregtest(res, model=", q(model), ", predictor=", q(predictor),
                  if (ni) ", ni=dat$ni" else "", ")")
   out <- run_code(call, d); rt <- out$value
   fit <- rt$fit
   add("regtest", case(id, call, d, list(method=method, test=test, model=model, predictor=predictor, mods=mods),
      list(stat=rt$zval, pval=rt$pval, df=if (is.null(rt$ddf) || is.na(rt$ddf)) NA else rt$ddf,
           est=if (is.null(rt$est)) NA else unname(rt$est), ci_lb=if (is.null(rt$ci.lb)) NA else unname(rt$ci.lb),
           ci_ub=if (is.null(rt$ci.ub)) NA else unname(rt$ci.ub),
           fit_beta=vec(coef(fit)),
           fit_se=vec(if (model == "rma") fit$se else coef(summary(fit))[, 2])),
      out$warnings))
}
add_reg("bcg-logRR-REML-z-regtest-rma-vi", d_bcg, "REML", "z", "rma", "vi")
add_reg("bcg-logRR-PM-knha-regtest-rma-ninv", d_bcg_n, "PM", "knha", "rma", "ninv", ni=TRUE)
add_reg("bcg-logRR-DL-z-regtest-lm-sqrtninv", d_bcg_n, "DL", "z", "lm", "sqrtninv", ni=TRUE)
add_reg("bcg-logRR-REML-z-regtest-rma-ni", d_bcg_n, "REML", "z", "rma", "ni", ni=TRUE)
add_reg("bcg-logRR-ablat-REML-z-regtest-rma-sei", c(d_bcg, list(mods=list(ablat=bcg_mods$ablat))), "REML", "z", "rma", "sei", "~ablat")

############################################################################
### write

prov <- list(
   r_version=R.version.string,
   metafor_version=as.character(packageVersion("metafor")),
   metadat_version=as.character(packageVersion("metadat")),
   script="tests/reference/run_metafor_diagnostics.R",
   rng=jarr(RNGkind()[1:3]), seed=SEED,
   control=list(rma=CTRL, reml_nonconvergence=CTRL_STEP,
                note="Converged settings; metafor's defaults (threshold=1e-5, maxiter=100) stop early."),
   number_format="sprintf('%.17g') (integers as integers); NA/NaN -> null",
   level=95)
writeLines(to_json(c(list(provenance=prov), groups)), OUT, useBytes=TRUE)
cat("wrote", OUT, "\n")
