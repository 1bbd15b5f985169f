# scale.gp - bench/run-scale's charts: wall time, time per collection and
# max pause, one line per dirty-page source, against the live heap
# (axis='heap', log scale) or the number of mutator threads (axis='threads').
#   gnuplot -e "datadir='D'; sources='full uffd'; axis='heap'; xlabel='...'; out='x.png'" scale.gp
# reads D/scale-<axis>-<source>.dat: x wall_s ms_per_collection max_pause_ms cpu_s
set terminal pngcairo size 1800, 500 font ",10" noenhanced
set output out
set multiplot layout 1, 4 title "cost against ".(axis eq 'heap' ? "live heap" : "mutator threads")
set grid
# lines rise to the right against the heap: the key goes where they are not
if (axis eq 'heap') { set key bottom right opaque box } else { set key below horizontal }
set xlabel xlabel
if (axis eq 'heap') { set logscale xy 2; set format x "%g" } else { set logscale x 2; set xtics (1, 2, 4, 8); set xrange [0.8:10] }
set yrange [*:*]
# panels: wall time, CPU time (user + system: steadier on a shared
# machine), time per collection, max pause
do for [c in "2 5 3 4"] {
    c = int(c)
    set title (c == 2 ? "wall time" : c == 5 ? "CPU time (user + system)" : \
               c == 3 ? "time per collection (stop-the-world)" : "max pause")
    set ylabel (c == 2 || c == 5 ? "s" : "ms")
    plot for [s in sources] sprintf("%s/scale-%s-%s.dat", datadir, axis, s) \
         using 1:c with linespoints lw 2 title s
}
unset multiplot
