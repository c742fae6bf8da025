// Hash history: the same URLs work from file:// in Electron and from the web server, and the
// server only ever has to serve index.html at '/'.
import { createRouter, createWebHashHistory, type RouteRecordRaw } from 'vue-router'
import type { IconName } from '@/components/common/icons'
// Views are bundled eagerly: the app is local, so a lazy chunk would only add a flash per section.
import ChatView from '@/views/ChatView.vue'
import MonitorView from '@/views/MonitorView.vue'
import NewRunView from '@/views/NewRunView.vue'
import RunsView from '@/views/RunsView.vue'
import SettingsView from '@/views/SettingsView.vue'

declare module 'vue-router' {
  interface RouteMeta {
    title: string
    subtitle?: string
    icon: IconName
    /** label in the sidebar; routes without one are not listed there */
    nav?: string
  }
}

export const routes: RouteRecordRaw[] = [
  {
    path: '/',
    name: 'runs',
    component: RunsView,
    meta: { title: 'Runs', subtitle: 'Context-extension runs on this machine', icon: 'runs', nav: 'Runs' },
  },
  {
    path: '/new',
    name: 'new',
    component: NewRunView,
    meta: { title: 'New run', subtitle: 'Teach a model a longer context in four steps', icon: 'newRun', nav: 'New run' },
  },
  {
    // one record with an optional id, so the sidebar's Monitor entry stays lit on /monitor/<id>
    path: '/monitor/:runId?',
    name: 'monitor',
    component: MonitorView,
    meta: { title: 'Monitor', subtitle: 'Live training figures', icon: 'monitor', nav: 'Monitor' },
  },
  {
    path: '/chat',
    name: 'chat',
    component: ChatView,
    meta: { title: 'Chat', subtitle: 'Talk to an extended model', icon: 'chat', nav: 'Chat' },
  },
  {
    path: '/settings',
    name: 'settings',
    component: SettingsView,
    meta: { title: 'Settings', subtitle: 'Data folder, appearance, compute and this machine', icon: 'settings', nav: 'Settings' },
  },
  // an old bookmark or a mistyped hash lands on the home page rather than a blank screen
  { path: '/:pathMatch(.*)*', redirect: '/' },
]

export function createAppRouter() {
  return createRouter({ history: createWebHashHistory(), routes })
}
