# suite.gp - one chart of a metric by mode, one panel per workload.
# bench/run-suite calls it as
#   gnuplot -e "datadir='D'; workloads='gcbench list'; nmodes=6; metric='wall_s'; \
#               ylabel='...'; out='x.png'" suite.gp
# and provides D/<workload>-<metric>.dat with lines: x "mode" median min max ok
# (ok = 0 for a mode that did not run: empty bar, label "mode (n/a)").
# Each panel has its own y scale: the workloads' times differ by an order of
# magnitude, and the comparison that matters is between modes.

n = words(workloads)
rows = (n + 1) / 2
set terminal pngcairo size 1200, 450 * rows font ",10" noenhanced
set output out
set multiplot layout rows, 2 title ylabel
set style fill solid 0.6 border -1
set boxwidth 0.6
set yrange [0:*]
set xrange [-0.6:nmodes - 0.4]
set xtics rotate by 30 right nomirror
set lmargin 10
set bmargin 6
set grid ytics
do for [i = 1:n] {
    w = word(workloads, i)
    f = sprintf("%s/%s-%s.dat", datadir, w, metric)
    set title w
    plot f using 1:3:xtic(2) with boxes lc rgb "#4a7ebb" notitle, \
         f using 1:($6 > 0 ? $3 : NaN):4:5 with yerrorbars lc rgb "black" pt -1 notitle
}
unset multiplot
